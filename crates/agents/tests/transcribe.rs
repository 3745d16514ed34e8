//! Dictation through the mock: OpenAI multipart transcription, the Gemini fallback, key errors.

use agents::{GEMINI_TRANSCRIBE_PROMPT, ModelConfig, ProviderAccess, build_transcriber};
use mock_llm::{MockServer, Script};
use serde_json::json;

fn config(mock: &MockServer, openai: Option<&str>, gemini: Option<&str>) -> ModelConfig {
    let access = |key: Option<&str>, base_url: String| ProviderAccess {
        api_key: key.map(str::to_string),
        base_url,
        rejected_key_hint: Some("check the OpenAI key".into()),
    };
    ModelConfig {
        openai: access(openai, mock.openai_base_url()),
        gemini: access(gemini, mock.gemini_base_url()),
        ..ModelConfig::default()
    }
}

#[tokio::test]
async fn openai_transcription_sends_multipart_with_model_and_file_name() {
    let mock = MockServer::start(Script::new().transcript("Change my seat to 14C.")).await.unwrap();
    let t = build_transcriber(&config(&mock, Some("sk-a"), Some("g-a"))).unwrap();
    assert_eq!(t.name(), "OpenAI");
    let text = t.transcribe(vec![1, 2, 3], "audio/webm;codecs=opus", "dictation.webm").await.unwrap();
    assert_eq!(text, "Change my seat to 14C.");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v1/audio/transcriptions");
    assert_eq!(reqs[0].header("authorization"), Some("Bearer sk-a"));
    assert_eq!(reqs[0].body["model"], json!(agents::DEFAULT_TRANSCRIPTION_MODEL));
    assert_eq!(reqs[0].body["file"]["filename"], json!("dictation.webm"));
    assert_eq!(reqs[0].body["file"]["size"], json!(3));
}

#[tokio::test]
async fn gemini_transcribes_when_only_gemini_is_configured() {
    let mock = MockServer::start(Script::new().transcript("Cancel my trip.")).await.unwrap();
    let t = build_transcriber(&config(&mock, None, Some("g-a"))).unwrap();
    assert_eq!(t.name(), "Gemini");
    let text = t.transcribe(vec![1, 2, 3], "audio/webm;codecs=opus", "dictation.webm").await.unwrap();
    assert_eq!(text, "Cancel my trip.");
    let reqs = mock.requests();
    assert_eq!(reqs[0].path, format!("/v1beta/models/{}:generateContent", agents::DEFAULT_GEMINI_MODEL));
    assert_eq!(reqs[0].header("x-goog-api-key"), Some("g-a"));
    assert_eq!(
        reqs[0].body,
        json!({"contents": [{"role": "user", "parts": [
            {"text": GEMINI_TRANSCRIBE_PROMPT},
            {"inlineData": {"mimeType": "audio/webm", "data": "AQID"}}
        ]}]})
    );
}

#[tokio::test]
async fn rejected_key_is_a_clear_error() {
    let mock = MockServer::start(Script::new()).await.unwrap();
    let t = build_transcriber(&config(&mock, Some(mock_llm::BAD_KEY), None)).unwrap();
    let err = t.transcribe(vec![1], "audio/webm", "a.webm").await.unwrap_err();
    assert_eq!(err.to_string(), "The OpenAI API rejected the API key (check the OpenAI key).");
}
