//! The parser on streams shaped exactly as real servers send them: field sets, spacing, comment
//! lines and the places each one puts usage, tool calls and reasoning (OpenAI, Azure OpenAI, Ollama,
//! vLLM, OpenRouter, DeepSeek, Groq, LM Studio, llama.cpp's server, Mistral, Gemini's
//! OpenAI-compatible endpoint).

use serde_json::json;

use super::*;

/// The calls and the completion of a run (the text events are checked elsewhere).
fn calls_of(events: &[Result<ModelEvent, ProviderError>]) -> Vec<FunctionCall> {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(ModelEvent::FunctionCall(call)) => Some(call.clone()),
            _ => None,
        })
        .collect()
}

fn completed_usage(events: &[Result<ModelEvent, ProviderError>]) -> Option<Usage> {
    match events.last() {
        Some(Ok(ModelEvent::Completed { usage })) => *usage,
        other => panic!("the stream did not complete: {other:?} in {events:#?}"),
    }
}

fn reasoning_text(events: &[Result<ModelEvent, ProviderError>]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Ok(ModelEvent::ReasoningPartDone { text, .. }) => Some(text.clone()),
        _ => None,
    })
}

fn answer_text(events: &[Result<ModelEvent, ProviderError>]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Ok(ModelEvent::ContentPartDone { text, .. }) => Some(text.clone()),
        _ => None,
    })
}

fn usage(input: u64, output: u64, cached: u64, reasoning: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, cached_tokens: cached, reasoning_tokens: reasoning }
}

#[test]
fn openai_text_with_include_usage() {
    // `usage: null` on every chunk, `obfuscation` padding, the usage chunk with every detail field.
    let body = r#"data: {"id":"chatcmpl-CAbc","object":"chat.completion.chunk","created":1760000000,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_4fce0778af","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Xk3"}

data: {"id":"chatcmpl-CAbc","object":"chat.completion.chunk","created":1760000000,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_4fce0778af","choices":[{"index":0,"delta":{"content":"Your"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"q9Lz"}

data: {"id":"chatcmpl-CAbc","object":"chat.completion.chunk","created":1760000000,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_4fce0778af","choices":[{"index":0,"delta":{"content":" seat is 14C."},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"a"}

data: {"id":"chatcmpl-CAbc","object":"chat.completion.chunk","created":1760000000,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_4fce0778af","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"Pw"}

data: {"id":"chatcmpl-CAbc","object":"chat.completion.chunk","created":1760000000,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_4fce0778af","choices":[],"usage":{"prompt_tokens":2431,"completion_tokens":7,"total_tokens":2438,"prompt_tokens_details":{"cached_tokens":2304,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"r2"}

data: [DONE]

"#;
    let mut expected = text_events(&["Your", " seat is 14C."]);
    expected.push(Ok(ModelEvent::Completed { usage: Some(usage(2431, 7, 2304, 0)) }));
    assert_eq!(run(body), expected);
}

#[test]
fn openai_parallel_tool_calls_and_reasoning_tokens() {
    let body = r#"data: {"id":"chatcmpl-CAbd","object":"chat.completion.chunk","created":1760000001,"model":"o4-mini-2025-04-16","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":null,"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CAbd","object":"chat.completion.chunk","created":1760000001,"model":"o4-mini-2025-04-16","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_Qm1","type":"function","function":{"name":"get_flight_status","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CAbd","object":"chat.completion.chunk","created":1760000001,"model":"o4-mini-2025-04-16","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"flight_number\""}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CAbd","object":"chat.completion.chunk","created":1760000001,"model":"o4-mini-2025-04-16","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":\"OA476\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CAbd","object":"chat.completion.chunk","created":1760000001,"model":"o4-mini-2025-04-16","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_Zr2","type":"function","function":{"name":"add_checked_bag","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CAbd","object":"chat.completion.chunk","created":1760000001,"model":"o4-mini-2025-04-16","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CAbd","object":"chat.completion.chunk","created":1760000001,"model":"o4-mini-2025-04-16","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}

data: {"id":"chatcmpl-CAbd","object":"chat.completion.chunk","created":1760000001,"model":"o4-mini-2025-04-16","service_tier":"default","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":1210,"completion_tokens":150,"total_tokens":1360,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":64,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}

data: [DONE]

"#;
    assert_eq!(
        run(body),
        vec![
            call("call_Qm1", "get_flight_status", "{\"flight_number\":\"OA476\"}"),
            call("call_Zr2", "add_checked_bag", "{}"),
            Ok(ModelEvent::Completed { usage: Some(usage(1210, 150, 0, 64)) }),
        ]
    );
}

#[test]
fn azure_openai_prompt_filter_chunk() {
    // Azure sends a first chunk with empty `choices` and empty ids, carrying the prompt filter results.
    let body = r#"data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}

data: {"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1760000002,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0"}

data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"Hello"},"finish_reason":null,"index":0,"logprobs":null}],"created":1760000002,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0"}

data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1760000002,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0"}

data: [DONE]

"#;
    let mut expected = text_events(&["Hello"]);
    expected.push(Ok(ModelEvent::Completed { usage: None }));
    assert_eq!(run(body), expected);
}

#[test]
fn ollama_tool_calls_without_index_and_stop() {
    // Ollama's /v1 before tool-call indexes: each call whole in its own chunk, no `index`, ids of its
    // own, the response finished with `stop`, then the usage chunk.
    let body = r#"data: {"id":"chatcmpl-412","object":"chat.completion.chunk","created":1760000003,"model":"llama3.1:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_6xg8y2ki","type":"function","function":{"name":"change_seat","arguments":"{\"seat\":\"14C\"}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-412","object":"chat.completion.chunk","created":1760000003,"model":"llama3.1:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_p0k2u1xe","type":"function","function":{"name":"add_checked_bag","arguments":"{}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-412","object":"chat.completion.chunk","created":1760000003,"model":"llama3.1:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}

data: {"id":"chatcmpl-412","object":"chat.completion.chunk","created":1760000003,"model":"llama3.1:8b","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":1733,"completion_tokens":41,"total_tokens":1774}}

data: [DONE]

"#;
    assert_eq!(
        run(body),
        vec![
            call("call_6xg8y2ki", "change_seat", "{\"seat\":\"14C\"}"),
            call("call_p0k2u1xe", "add_checked_bag", "{}"),
            Ok(ModelEvent::Completed { usage: Some(usage(1733, 41, 0, 0)) }),
        ]
    );
}

#[test]
fn ollama_reasoning_and_indexed_call() {
    // Newer Ollama: `reasoning` deltas for thinking models, indexed calls, `tool_calls` finish.
    let body = r#"data: {"id":"chatcmpl-77","object":"chat.completion.chunk","created":1760000004,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"The user wants"},"finish_reason":null}]}

data: {"id":"chatcmpl-77","object":"chat.completion.chunk","created":1760000004,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":" a seat change."},"finish_reason":null}]}

data: {"id":"chatcmpl-77","object":"chat.completion.chunk","created":1760000004,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_c3ld","index":0,"type":"function","function":{"name":"change_seat","arguments":"{\"seat\":\"2A\"}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-77","object":"chat.completion.chunk","created":1760000004,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"tool_calls"}]}

data: [DONE]

"#;
    let events = run(body);
    assert_eq!(reasoning_text(&events).as_deref(), Some("The user wants a seat change."));
    assert_eq!(answer_text(&events), None, "no answer message: {events:#?}");
    assert_eq!(calls_of(&events), vec![fc("call_c3ld", "change_seat", "{\"seat\":\"2A\"}")]);
    assert_eq!(completed_usage(&events), None);
}

#[test]
fn vllm_reasoning_blank_text_and_tool_call() {
    // vLLM with a reasoning parser and the hermes tool parser: `reasoning_content`, a blank text
    // piece before the call, the name in the call's first piece and arguments after, `stop_reason`,
    // a usage chunk with `prompt_tokens_details: null`.
    let body = r#"data: {"id":"chatcmpl-9a1","object":"chat.completion.chunk","created":1760000005,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-9a1","object":"chat.completion.chunk","created":1760000005,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"reasoning_content":"Need the booking."},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-9a1","object":"chat.completion.chunk","created":1760000005,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"content":"\n\n"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-9a1","object":"chat.completion.chunk","created":1760000005,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-5c0e","type":"function","index":0,"function":{"name":"get_booking"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-9a1","object":"chat.completion.chunk","created":1760000005,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"confirmation\": \""}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-9a1","object":"chat.completion.chunk","created":1760000005,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"OS1234\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-9a1","object":"chat.completion.chunk","created":1760000005,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"tool_calls","stop_reason":null}],"usage":null}

data: {"id":"chatcmpl-9a1","object":"chat.completion.chunk","created":1760000005,"model":"Qwen/Qwen3-8B","choices":[],"usage":{"prompt_tokens":1870,"total_tokens":1932,"completion_tokens":62,"prompt_tokens_details":null}}

data: [DONE]

"#;
    let events = run(body);
    assert_eq!(reasoning_text(&events).as_deref(), Some("Need the booking."));
    assert_eq!(answer_text(&events), None, "the blank text makes no message: {events:#?}");
    assert_eq!(calls_of(&events), vec![fc("chatcmpl-tool-5c0e", "get_booking", "{\"confirmation\": \"OS1234\"}")]);
    assert_eq!(completed_usage(&events), Some(usage(1870, 62, 0, 0)));
}

#[test]
fn vllm_usage_chunk_with_null_choices_and_leading_blank_text() {
    // Blank text before the answer is kept at the start of it, in one delta.
    let body = r#"data: {"id":"chatcmpl-9a2","object":"chat.completion.chunk","created":1760000006,"model":"m","choices":[{"index":0,"delta":{"content":"\n"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-9a2","object":"chat.completion.chunk","created":1760000006,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":"stop","stop_reason":null}]}

data: {"id":"chatcmpl-9a2","object":"chat.completion.chunk","created":1760000006,"model":"m","choices":null,"usage":{"prompt_tokens":10,"total_tokens":12,"completion_tokens":2}}

data: [DONE]

"#;
    let mut expected = text_events(&["\nHi"]);
    expected.push(Ok(ModelEvent::Completed { usage: Some(usage(10, 2, 0, 0)) }));
    assert_eq!(run(body), expected);
}

#[test]
fn openrouter_comments_reasoning_details_and_cost() {
    let body = r#": OPENROUTER PROCESSING

: OPENROUTER PROCESSING

data: {"id":"gen-1760000007-abc","provider":"DeepInfra","model":"deepseek/deepseek-r1","object":"chat.completion.chunk","created":1760000007,"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"Short","reasoning_details":[{"type":"reasoning.text","text":"Short","format":"unknown","index":0}]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}

data: {"id":"gen-1760000007-abc","provider":"DeepInfra","model":"deepseek/deepseek-r1","object":"chat.completion.chunk","created":1760000007,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello!","reasoning":null},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}

data: {"id":"gen-1760000007-abc","provider":"DeepInfra","model":"deepseek/deepseek-r1","object":"chat.completion.chunk","created":1760000007,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop","native_finish_reason":"stop","logprobs":null}]}

data: {"id":"gen-1760000007-abc","provider":"DeepInfra","model":"deepseek/deepseek-r1","object":"chat.completion.chunk","created":1760000007,"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":9,"total_tokens":51,"cost":0.0000321,"is_byok":false,"prompt_tokens_details":{"cached_tokens":32,"audio_tokens":0},"cost_details":{"upstream_inference_cost":null},"completion_tokens_details":{"reasoning_tokens":6,"image_tokens":0}}}

data: [DONE]

"#;
    let events = run(body);
    assert_eq!(reasoning_text(&events).as_deref(), Some("Short"));
    assert_eq!(answer_text(&events).as_deref(), Some("Hello!"));
    assert_eq!(completed_usage(&events), Some(usage(42, 9, 32, 6)));
}

#[test]
fn openrouter_error_mid_stream_with_a_string_code() {
    let body = r#": OPENROUTER PROCESSING

data: {"id":"gen-1760000008-def","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1760000008,"choices":[{"index":0,"delta":{"role":"assistant","content":"Let me"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}

data: {"id":"gen-1760000008-def","object":"chat.completion.chunk","created":1760000008,"model":"openai/gpt-4o","provider":"OpenAI","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}

"#;
    let events = run(body);
    assert_eq!(answer_text(&events), None, "a failed answer is not completed: {events:#?}");
    assert_eq!(
        events.last(),
        Some(&Err(ProviderError::Failed {
            provider: "OpenAI-compatible",
            message: "Provider disconnected unexpectedly".into(),
            retryable: true,
            code: Some("server_error".into()),
        }))
    );
}

#[test]
fn deepseek_reasoner_keep_alive_and_cache_hits() {
    // DeepSeek: `: keep-alive` lines while busy, `reasoning_content` with `content: null`, the usage
    // with its own cache fields, sent with the finishing chunk. Written as DeepSeek does: `data: `.
    let body = r#": keep-alive

data: {"id":"8c4a7e62-1f0b","object":"chat.completion.chunk","created":1760000009,"model":"deepseek-reasoner","system_fingerprint":"fp_5417b77867_prod0820_fp8_kvcache","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"8c4a7e62-1f0b","object":"chat.completion.chunk","created":1760000009,"model":"deepseek-reasoner","system_fingerprint":"fp_5417b77867_prod0820_fp8_kvcache","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Okay"},"logprobs":null,"finish_reason":null}],"usage":null}

: keep-alive

data: {"id":"8c4a7e62-1f0b","object":"chat.completion.chunk","created":1760000009,"model":"deepseek-reasoner","system_fingerprint":"fp_5417b77867_prod0820_fp8_kvcache","choices":[{"index":0,"delta":{"content":"Hi there","reasoning_content":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"8c4a7e62-1f0b","object":"chat.completion.chunk","created":1760000009,"model":"deepseek-reasoner","system_fingerprint":"fp_5417b77867_prod0820_fp8_kvcache","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":30,"total_tokens":50,"prompt_tokens_details":null,"completion_tokens_details":{"reasoning_tokens":27},"prompt_cache_hit_tokens":16,"prompt_cache_miss_tokens":4}}

data: [DONE]

"#;
    let events = run(body);
    assert_eq!(reasoning_text(&events).as_deref(), Some("Okay"));
    assert_eq!(answer_text(&events).as_deref(), Some("Hi there"));
    assert_eq!(completed_usage(&events), Some(usage(20, 30, 16, 27)));
    // Some gateways in front of DeepSeek write `data:` without the space.
    let tight = body.replace("data: ", "data:");
    assert_eq!(run(&tight).len(), events.len());
}

#[test]
fn groq_usage_in_x_groq() {
    // Groq: `x_groq` with the request id first, the usage in `x_groq` on the finishing chunk, each
    // call whole in one piece.
    let body = r#"data: {"id":"chatcmpl-8d2f","object":"chat.completion.chunk","created":1760000010,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_3f3b593e33","choices":[{"index":0,"delta":{"role":"assistant","content":null},"logprobs":null,"finish_reason":null}],"x_groq":{"id":"req_01k0abcd"}}

data: {"id":"chatcmpl-8d2f","object":"chat.completion.chunk","created":1760000010,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_3f3b593e33","choices":[{"index":0,"delta":{"tool_calls":[{"id":"call_h7ya","type":"function","function":{"name":"change_seat","arguments":"{\"seat\":\"3C\"}"},"index":0}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-8d2f","object":"chat.completion.chunk","created":1760000010,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_3f3b593e33","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"x_groq":{"id":"req_01k0abcd","usage":{"queue_time":0.051,"prompt_tokens":1502,"prompt_time":0.07,"completion_tokens":22,"completion_time":0.08,"total_tokens":1524,"total_time":0.15}}}

data: [DONE]

"#;
    assert_eq!(
        run(body),
        vec![
            call("call_h7ya", "change_seat", "{\"seat\":\"3C\"}"),
            Ok(ModelEvent::Completed { usage: Some(usage(1502, 22, 0, 0)) }),
        ]
    );
    // Asked for usage too, Groq also sends the standard usage chunk: counted once, not twice.
    let with_chunk = body.replace(
        "data: [DONE]",
        r#"data: {"id":"chatcmpl-8d2f","object":"chat.completion.chunk","created":1760000010,"model":"llama-3.3-70b-versatile","choices":[],"usage":{"queue_time":0.051,"prompt_tokens":1502,"prompt_time":0.07,"completion_tokens":22,"completion_time":0.08,"total_tokens":1524,"total_time":0.15}}

data: [DONE]"#,
    );
    assert_eq!(completed_usage(&run(&with_chunk)), Some(usage(1502, 22, 0, 0)));
}

#[test]
fn lm_studio_tool_call_pieces() {
    // LM Studio: numeric-string call ids, `type` repeated on every piece, arguments in small pieces.
    let body = r#"data: {"id":"chatcmpl-iw3","object":"chat.completion.chunk","created":1760000011,"model":"qwen2.5-7b-instruct","system_fingerprint":"qwen2.5-7b-instruct","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-iw3","object":"chat.completion.chunk","created":1760000011,"model":"qwen2.5-7b-instruct","system_fingerprint":"qwen2.5-7b-instruct","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"365174485","type":"function","function":{"name":"cancel_trip","arguments":""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-iw3","object":"chat.completion.chunk","created":1760000011,"model":"qwen2.5-7b-instruct","system_fingerprint":"qwen2.5-7b-instruct","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"arguments":"{\""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-iw3","object":"chat.completion.chunk","created":1760000011,"model":"qwen2.5-7b-instruct","system_fingerprint":"qwen2.5-7b-instruct","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"arguments":"reason\":\"sick\"}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-iw3","object":"chat.completion.chunk","created":1760000011,"model":"qwen2.5-7b-instruct","system_fingerprint":"qwen2.5-7b-instruct","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}

data: {"id":"chatcmpl-iw3","object":"chat.completion.chunk","created":1760000011,"model":"qwen2.5-7b-instruct","system_fingerprint":"qwen2.5-7b-instruct","choices":[],"usage":{"prompt_tokens":512,"completion_tokens":18,"total_tokens":530}}

data: [DONE]

"#;
    assert_eq!(
        run(body),
        vec![
            call("365174485", "cancel_trip", "{\"reason\":\"sick\"}"),
            Ok(ModelEvent::Completed { usage: Some(usage(512, 18, 0, 0)) }),
        ]
    );
}

/// A llama.cpp server chunk (`llama-server`, OpenAI-compatible mode).
fn llama_cpp(choices: &str, extra: &str) -> String {
    format!(
        "data: {{\"choices\":{choices},\"created\":1760000012,\"id\":\"chatcmpl-Yt7Jq\",\"model\":\"smollm2\",\"system_fingerprint\":\"b7000-0123abcd\",\"object\":\"chat.completion.chunk\"{extra}}}\n\n"
    )
}

#[test]
fn llama_cpp_server_usage_chunk_with_timings() {
    let timings = r#","timings":{"cache_n":0,"prompt_n":31,"prompt_ms":80.1,"prompt_per_token_ms":2.58,"prompt_per_second":387.0,"predicted_n":3,"predicted_ms":30.2,"predicted_per_token_ms":10.1,"predicted_per_second":99.3}"#;
    let body = [
        llama_cpp(r#"[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}]"#, ""),
        llama_cpp(r#"[{"finish_reason":null,"index":0,"delta":{"content":"Hello"}}]"#, ""),
        llama_cpp(r#"[{"finish_reason":null,"index":0,"delta":{"content":" there"}}]"#, ""),
        llama_cpp(r#"[{"finish_reason":"stop","index":0,"delta":{}}]"#, ""),
        llama_cpp(
            "[]",
            &format!(
                r#","usage":{{"completion_tokens":3,"prompt_tokens":31,"total_tokens":34,"prompt_tokens_details":{{"cached_tokens":0}}}}{timings}"#
            ),
        ),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let mut expected = text_events(&["Hello", " there"]);
    expected.push(Ok(ModelEvent::Completed { usage: Some(usage(31, 3, 0, 0)) }));
    assert_eq!(run(&body), expected);
}

#[test]
fn llama_cpp_server_timings_without_usage() {
    // Without `stream_options` the server still reports its counts, in `timings` on the last chunk:
    // evaluated plus cached prompt tokens, generated tokens.
    let timings = r#","timings":{"cache_n":24,"prompt_n":7,"prompt_ms":20.0,"prompt_per_token_ms":2.8,"prompt_per_second":350.0,"predicted_n":2,"predicted_ms":20.0,"predicted_per_token_ms":10.0,"predicted_per_second":100.0}"#;
    let body = [
        llama_cpp(r#"[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}]"#, ""),
        llama_cpp(r#"[{"finish_reason":null,"index":0,"delta":{"content":"Hi"}}]"#, ""),
        llama_cpp(r#"[{"finish_reason":"length","index":0,"delta":{}}]"#, timings),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let mut expected = text_events(&["Hi"]);
    expected.push(Ok(ModelEvent::Completed { usage: Some(usage(31, 2, 24, 0)) }));
    assert_eq!(run(&body), expected);
}

#[test]
fn llama_cpp_server_tool_call_pieces() {
    let body = [
        llama_cpp(r#"[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}]"#, ""),
        llama_cpp(
            r#"[{"finish_reason":null,"index":0,"delta":{"tool_calls":[{"index":0,"id":"Xb2kP0cNf1Q","type":"function","function":{"name":"change_seat","arguments":"{\""}}]}}]"#,
            "",
        ),
        llama_cpp(
            r#"[{"finish_reason":null,"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"seat\":\"1A\"}"}}]}}]"#,
            "",
        ),
        llama_cpp(r#"[{"finish_reason":"tool_calls","index":0,"delta":{}}]"#, ""),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    assert_eq!(
        run(&body),
        vec![call("Xb2kP0cNf1Q", "change_seat", "{\"seat\":\"1A\"}"), Ok(ModelEvent::Completed { usage: None })]
    );
}

#[test]
fn mistral_thinking_parts_and_usage_on_the_last_chunk() {
    // Magistral streams `content` as a list of parts: `thinking` (itself a list of text parts), then
    // `text`; Mistral puts the usage on the finishing chunk.
    let body = r#"data: {"id":"c3c77283","object":"chat.completion.chunk","created":1760000013,"model":"magistral-medium-2509","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

data: {"id":"c3c77283","object":"chat.completion.chunk","created":1760000013,"model":"magistral-medium-2509","choices":[{"index":0,"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":"A greeting,"}]}]},"finish_reason":null}]}

data: {"id":"c3c77283","object":"chat.completion.chunk","created":1760000013,"model":"magistral-medium-2509","choices":[{"index":0,"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":" answer kindly."}]}]},"finish_reason":null}]}

data: {"id":"c3c77283","object":"chat.completion.chunk","created":1760000013,"model":"magistral-medium-2509","choices":[{"index":0,"delta":{"content":[{"type":"text","text":"Hello"}]},"finish_reason":null}]}

data: {"id":"c3c77283","object":"chat.completion.chunk","created":1760000013,"model":"magistral-medium-2509","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"total_tokens":40,"completion_tokens":28}}

data: [DONE]

"#;
    let events = run(body);
    assert_eq!(reasoning_text(&events).as_deref(), Some("A greeting, answer kindly."));
    assert_eq!(answer_text(&events).as_deref(), Some("Hello!"));
    assert_eq!(completed_usage(&events), Some(usage(12, 28, 0, 0)));
}

#[test]
fn mistral_tool_call_whole_with_index() {
    let body = r#"data: {"id":"6a1b","object":"chat.completion.chunk","created":1760000014,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

data: {"id":"6a1b","object":"chat.completion.chunk","created":1760000014,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"tool_calls":[{"id":"D681PevKs","function":{"name":"get_flight_status","arguments":"{\"flight_number\": \"OA476\"}"},"index":0}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":900,"total_tokens":930,"completion_tokens":30}}

data: [DONE]

"#;
    assert_eq!(
        run(body),
        vec![
            call("D681PevKs", "get_flight_status", "{\"flight_number\": \"OA476\"}"),
            Ok(ModelEvent::Completed { usage: Some(usage(900, 30, 0, 0)) }),
        ]
    );
}

#[test]
fn gemini_parallel_calls_share_index_zero_and_carry_signatures() {
    // Gemini's OpenAI-compatible endpoint: parallel calls each in their own chunk, all `index` 0 (or
    // none), each whole; the thought signature in `extra_content`; `stop` as the finish reason.
    let body = r#"data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"extra_content":{"google":{"thought_signature":"CiQB0e2Kb1"}},"function":{"arguments":"{\"flight_number\":\"OA476\"}","name":"get_flight_status"},"id":"function-call-1","index":0,"type":"function"}]},"index":0}],"created":1760000015,"id":"Xj8r","model":"gemini-3-flash-preview","object":"chat.completion.chunk"}

data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"{\"flight_number\":\"OA477\"}","name":"get_flight_status"},"id":"function-call-2","index":0,"type":"function"}]},"index":0}],"created":1760000015,"id":"Xj8r","model":"gemini-3-flash-preview","object":"chat.completion.chunk"}

data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"{}","name":"add_checked_bag"},"type":"function"}]},"index":0}],"created":1760000015,"id":"Xj8r","model":"gemini-3-flash-preview","object":"chat.completion.chunk"}

data: {"choices":[{"delta":{"role":"assistant"},"finish_reason":"stop","index":0}],"created":1760000015,"id":"Xj8r","model":"gemini-3-flash-preview","object":"chat.completion.chunk","usage":{"completion_tokens":40,"prompt_tokens":1500,"total_tokens":1620,"completion_tokens_details":{"reasoning_tokens":80}}}

data: [DONE]

"#;
    let events = run(body);
    let calls = calls_of(&events);
    assert_eq!(calls.len(), 3, "{events:#?}");
    assert_eq!(
        (calls[0].call_id.as_str(), calls[0].name.as_str(), calls[0].arguments.as_str()),
        ("function-call-1", "get_flight_status", "{\"flight_number\":\"OA476\"}")
    );
    assert_eq!(calls[0].provider_data, Some(json!({"extra_content": {"google": {"thought_signature": "CiQB0e2Kb1"}}})));
    assert_eq!(
        (calls[1].call_id.as_str(), calls[1].arguments.as_str(), calls[1].provider_data.as_ref()),
        ("function-call-2", "{\"flight_number\":\"OA477\"}", None)
    );
    // No id and no index: still its own call, with a generated id.
    assert_eq!((calls[2].name.as_str(), calls[2].arguments.as_str()), ("add_checked_bag", "{}"));
    assert!(calls[2].call_id.starts_with("call_"), "{:?}", calls[2]);
    assert_eq!(completed_usage(&events), Some(usage(1500, 40, 0, 80)));

    // The signature goes back with its call in the next request, as it came.
    let mut request = ModelRequest { input: vec![InputItem::user_text("Status of OA476?")], ..Default::default() };
    request.input.push(InputItem::FunctionCall {
        call_id: calls[0].call_id.clone(),
        name: calls[0].name.clone(),
        arguments: calls[0].arguments.clone(),
        provider_data: calls[0].provider_data.clone(),
    });
    let body = Body { model: "gemini-3-flash-preview", request: &request, include_usage: false, max_tokens: None };
    let sent = serde_json::to_value(&body).unwrap();
    assert_eq!(
        sent["messages"][1]["tool_calls"][0],
        json!({"id": "function-call-1", "type": "function",
               "function": {"name": "get_flight_status", "arguments": "{\"flight_number\":\"OA476\"}"},
               "extra_content": {"google": {"thought_signature": "CiQB0e2Kb1"}}})
    );
}

#[test]
fn a_call_resent_whole_is_not_doubled() {
    // A server that repeats a call's whole arguments in a later piece (same index, same id).
    let body = sse(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "change_seat", "arguments": "{\"seat\":\"4D\"}"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c1", "function": {"arguments": "{\"seat\":\"4D\"}"}}]}),
            json!("tool_calls"),
        ),
    ]);
    assert_eq!(
        run(&body),
        vec![call("c1", "change_seat", "{\"seat\":\"4D\"}"), Ok(ModelEvent::Completed { usage: None })]
    );
}

#[test]
fn only_blank_text_and_stop_says_nothing() {
    // Blank text alone makes no message; `length` with nothing said fails as before.
    let body = sse(&[chunk(json!({"content": " \n"}), json!("stop"))]);
    assert_eq!(run(&body), vec![Ok(ModelEvent::Completed { usage: None })]);
    let body = sse(&[chunk(json!({"content": "\n"}), json!("length"))]);
    assert!(matches!(&run(&body)[..], [Err(ProviderError::Failed { .. })]));
}

fn fc(id: &str, name: &str, arguments: &str) -> FunctionCall {
    FunctionCall { call_id: id.into(), name: name.into(), arguments: arguments.into(), provider_data: None }
}
