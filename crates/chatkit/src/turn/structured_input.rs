//! Applying a structured-input submission to its item, the way the Python SDK normalises answers: a
//! skipped form skips every question; a question without values, or marked skipped, is skipped; a
//! single-choice question keeps only the first value; answers to questions the item does not ask are
//! ignored. The item's status becomes the submission's, so a form is answered once.

use serde_json::Value;

use crate::errors::AppError;
use crate::types::{
    ItemKind, StructuredAnswer, StructuredInputItem, StructuredInputStatus, StructuredInputSubmission,
    SubmissionStatus, ThreadItem,
};

/// The item answered by `submission`; a 400 when it is not a pending `structured_input` item.
pub(super) fn answer_structured_input(
    mut item: ThreadItem,
    submission: &StructuredInputSubmission,
) -> Result<ThreadItem, AppError> {
    let ItemKind::StructuredInput(si) = &mut item.kind else {
        return Err(AppError::BadRequest(format!("item {} is not a structured_input item", item.id)));
    };
    if si.status != StructuredInputStatus::Pending {
        return Err(AppError::BadRequest(format!("structured input {} was already submitted", item.id)));
    }
    apply_submission(si, submission);
    Ok(item)
}

fn apply_submission(si: &mut StructuredInputItem, submission: &StructuredInputSubmission) {
    let skipped_all = submission.status == SubmissionStatus::Skipped;
    for id in submission.answers.keys() {
        if !si.inputs.iter().any(|q| &q.id == id) {
            tracing::warn!(question_id = id, "structured input answer for an unknown question ignored");
        }
    }
    for question in &mut si.inputs {
        let answer = submission.answers.get(&question.id);
        question.answer = Some(match answer {
            Some(a) if !skipped_all && !a.skipped && !a.values.is_empty() => {
                let single = question.rest.get("type").and_then(Value::as_str) == Some("multiple_choice")
                    && question.rest.get("multiple").and_then(Value::as_bool) != Some(true);
                let values = if single { a.values[..1].to_vec() } else { a.values.clone() };
                StructuredAnswer { values, skipped: false }
            }
            _ => StructuredAnswer { values: Vec::new(), skipped: true },
        });
    }
    si.status = match submission.status {
        SubmissionStatus::Answered => StructuredInputStatus::Answered,
        SubmissionStatus::Skipped => StructuredInputStatus::Skipped,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{StructuredAnswerInput, StructuredInputItem};
    use serde_json::json;

    fn item() -> ThreadItem {
        let si: StructuredInputItem = serde_json::from_value(json!({
            "status": "pending",
            "inputs": [
                {"id": "q1", "question": "Pick", "type": "multiple_choice", "options": [{"value": "A"}], "multiple": true},
                {"id": "q2", "question": "One", "type": "multiple_choice", "options": [{"value": "A"}]},
                {"id": "q3", "question": "Why?", "type": "freeform", "description": "d"}
            ]
        }))
        .unwrap();
        ThreadItem::new("si_1", "thr_1", ItemKind::StructuredInput(si))
    }

    fn answers(status: SubmissionStatus) -> StructuredInputSubmission {
        let mut s = StructuredInputSubmission { status, ..Default::default() };
        s.answers.insert("q1".into(), StructuredAnswerInput { values: vec!["A".into(), "B".into()], skipped: false });
        s.answers.insert("q2".into(), StructuredAnswerInput { values: vec!["X".into(), "Y".into()], skipped: false });
        s.answers.insert("zz".into(), StructuredAnswerInput { values: vec!["X".into()], skipped: false });
        s
    }

    #[test]
    fn answers_are_normalized_like_the_sdk() {
        let out = answer_structured_input(item(), &answers(SubmissionStatus::Answered)).unwrap();
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["status"], "answered");
        assert_eq!(v["inputs"][0]["answer"], json!({"values": ["A", "B"], "skipped": false}));
        assert_eq!(v["inputs"][1]["answer"], json!({"values": ["X"], "skipped": false}));
        assert_eq!(v["inputs"][2]["answer"], json!({"values": [], "skipped": true}));
        assert_eq!(
            serde_json::to_string(&v["inputs"][2]).unwrap(),
            r#"{"id":"q3","question":"Why?","answer":{"values":[],"skipped":true},"type":"freeform","description":"d"}"#
        );
        // A second submission is refused.
        assert!(matches!(
            answer_structured_input(out, &answers(SubmissionStatus::Answered)),
            Err(AppError::BadRequest(_))
        ));
    }

    #[test]
    fn skipped_submission_skips_every_question() {
        let out = answer_structured_input(item(), &answers(SubmissionStatus::Skipped)).unwrap();
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["status"], "skipped");
        for i in 0..3 {
            assert_eq!(v["inputs"][i]["answer"], json!({"values": [], "skipped": true}));
        }
    }
}
