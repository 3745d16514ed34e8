//! Streamed response bodies: frames written back to back into one buffer (the offset where each
//! ends, and whether it carries a text delta), then played as an HTTP body with the answer's
//! timing (a delay before each delta, a stall, a cut). Without timing the whole body is one
//! `Bytes` chunk: no timer and no extra task per request.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::{Body, Bytes};

use crate::json_writer::JsonWriter;
use crate::plan::Answer;

/// How long the frames written before a scripted cut get to reach the socket before the abort.
const CUT_FLUSH: Duration = Duration::from_millis(30);

/// Frames written into one buffer; each frame ends at a recorded offset.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    /// The frames' bytes, back to back.
    pub(crate) writer: JsonWriter,
    /// End offset of each frame and whether it is a text delta.
    ends: Vec<(usize, bool)>,
}

impl Frames {
    /// Marks the end of the frame just written.
    pub(crate) fn end_frame(&mut self, is_delta: bool) {
        self.ends.push((self.writer.buf.len(), is_delta));
    }

    /// Whether no frame was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The HTTP body playing these frames with the answer's timing (`None`: all at once).
    pub(crate) fn into_body(self, timing: Option<&Answer>) -> Body {
        let bytes = Bytes::from(self.writer.buf);
        match timing.filter(|answer| has_timing(answer)) {
            None => Body::from(bytes),
            Some(answer) => play(schedule(&self.ends, &bytes, answer)),
        }
    }
}

/// Whether `answer` asks for anything but sending the body at once.
fn has_timing(answer: &Answer) -> bool {
    !answer.delta_delay.is_zero() || answer.cut_after.is_some() || answer.stall.is_some()
}

/// One step of a timed body.
#[derive(Debug)]
enum Step {
    Data(Bytes),
    Sleep(Duration),
    Abort,
}

/// Cuts `bytes` into the chunks sent between the pauses `answer` asks for. Frames between two
/// pauses go out as one chunk.
fn schedule(ends: &[(usize, bool)], bytes: &Bytes, answer: &Answer) -> VecDeque<Step> {
    let mut steps = VecDeque::new();
    let mut chunk_start = 0;
    let mut frame_start = 0;
    let mut deltas = 0usize;
    let mut prev_delta = false;
    let mut stalled = false;
    let mut cut = false;
    // The point "after n deltas": the first frame after the n-th delta (for n = 0, the first
    // delta), or the end of the deltas if the text has fewer.
    let at_point = |n: usize, deltas: usize, is_delta: bool, prev_delta: bool| {
        (deltas >= n && (n > 0 || is_delta)) || (prev_delta && !is_delta)
    };
    for &(end, is_delta) in ends {
        if let Some(n) = answer.cut_after
            && at_point(n, deltas, is_delta, prev_delta)
        {
            cut = true;
            break;
        }
        let mut pause = Duration::ZERO;
        if let Some((n, stall)) = answer.stall
            && !stalled
            && at_point(n, deltas, is_delta, prev_delta)
        {
            stalled = true;
            pause += stall;
        }
        if is_delta && deltas > 0 {
            pause += answer.delta_delay;
        }
        if !pause.is_zero() {
            if frame_start > chunk_start {
                steps.push_back(Step::Data(bytes.slice(chunk_start..frame_start)));
            }
            steps.push_back(Step::Sleep(pause));
            chunk_start = frame_start;
        }
        if is_delta {
            deltas += 1;
        }
        prev_delta = is_delta;
        frame_start = end;
    }
    if frame_start > chunk_start {
        steps.push_back(Step::Data(bytes.slice(chunk_start..frame_start)));
    }
    if cut {
        steps.push_back(Step::Sleep(CUT_FLUSH));
        steps.push_back(Step::Abort);
    }
    steps
}

/// The body that performs `steps`; an abort ends it with an error, so the connection is dropped
/// mid-stream as a failing provider would.
fn play(steps: VecDeque<Step>) -> Body {
    let stream = futures::stream::unfold(steps, |mut steps| async move {
        loop {
            match steps.pop_front()? {
                Step::Data(data) => return Some((Ok(data), steps)),
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::Abort => {
                    let err =
                        std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "mock-llm: scripted stream cut");
                    return Some((Err(err), VecDeque::new()));
                }
            }
        }
    });
    Body::from_stream(stream)
}
