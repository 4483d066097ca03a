//! Reading and checking generation request bodies of every protocol, reduced
//! to what the simulator needs: the route, stream or not, prompt tokens and
//! the output budget.

use serde_json::{Map, Value};

use super::model::{chat_prompt_tokens, count_tokens};
use super::Protocol;

/// A generation endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/v1/chat/completions`
    V1Chat,
    /// `/v1/completions`
    V1Completions,
    /// Ollama `/api/chat`
    OllamaChat,
    /// Ollama `/api/generate`
    OllamaGenerate,
    /// TGI `/generate`
    TgiGenerate,
    /// TGI `/generate_stream`
    TgiGenerateStream,
    /// llama.cpp `/completion` (and `/completions`)
    LlamaCompletion,
}

/// Where a request came in: the endpoint, the protocol whose shape the answer
/// takes (for `/v1/*`, the one that owns those routes), and the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) protocol: Protocol,
    pub(crate) endpoint: Endpoint,
    pub(crate) path: &'static str,
}

impl Route {
    /// The id of the 1-based request `index` (see [`super::Truth::id`]).
    pub(crate) fn id(self, index: u64) -> String {
        match self.endpoint {
            Endpoint::V1Chat => format!("chatcmpl-sim-{index}"),
            Endpoint::V1Completions => format!("cmpl-sim-{index}"),
            _ => format!("sim-{index}"),
        }
    }
}

/// A valid generation request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GenRequest {
    pub(crate) route: Route,
    pub(crate) stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub(crate) include_usage: bool,
    pub(crate) prompt_tokens: u32,
    /// The output budget, if the request sets one.
    pub(crate) max_tokens: Option<u32>,
    /// The model the request names (Ollama echoes it).
    pub(crate) model: Option<String>,
    /// TGI `parameters.details`.
    pub(crate) details: bool,
    /// TGI `parameters.seed`.
    pub(crate) seed: Option<u64>,
    /// The prompt text where an answer echoes or measures it (TGI
    /// `x-compute-characters`, llama.cpp `prompt`); empty elsewhere.
    pub(crate) prompt: String,
}

/// What a well-formed body asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Generate(GenRequest),
    /// Ollama's "load the model" request: `/api/generate` without a prompt,
    /// `/api/chat` without messages. Answered at once; not a generation.
    Load {
        model: Option<String>,
    },
}

/// Why a body was refused; each protocol turns it into its own status and
/// shape.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Not JSON at all.
    Syntax(String),
    /// JSON of the wrong shape (missing or mistyped field).
    Schema(String),
    /// Well-formed, but a value is out of range.
    Validation(String),
}

impl Reject {
    pub(crate) fn message(&self) -> &str {
        match self {
            Reject::Syntax(m) | Reject::Schema(m) | Reject::Validation(m) => m,
        }
    }
}

type Fields = Map<String, Value>;

/// Read and check the body of a request to `route`.
pub(crate) fn parse(route: Route, body: &[u8]) -> Result<Parsed, Reject> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Reject::Syntax(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(Reject::Schema(
            "request body must be a JSON object".to_owned(),
        ));
    };
    let base = GenRequest {
        route,
        stream: false,
        include_usage: false,
        prompt_tokens: 0,
        max_tokens: None,
        model: None,
        details: false,
        seed: None,
        prompt: String::new(),
    };
    match route.endpoint {
        Endpoint::V1Chat | Endpoint::V1Completions => openai(base, &fields),
        Endpoint::OllamaChat | Endpoint::OllamaGenerate => ollama(base, &fields),
        Endpoint::TgiGenerate | Endpoint::TgiGenerateStream => tgi(base, &fields),
        Endpoint::LlamaCompletion => llamacpp(base, &fields),
    }
    .map_err(|reject| match (route.protocol, reject) {
        // OpenAI servers call every shape problem a bad request.
        (Protocol::OpenAi | Protocol::LlamaCpp, Reject::Schema(m)) => Reject::Validation(m),
        (_, reject) => reject,
    })
}

fn openai(mut r: GenRequest, fields: &Fields) -> Result<Parsed, Reject> {
    r.stream = optional_bool(fields.get("stream"), "stream")?;
    r.include_usage = match fields.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => {
            optional_bool(options.get("include_usage"), "stream_options.include_usage")?
        }
        Some(_) => return Err(schema("'stream_options' must be an object")),
    };
    r.max_tokens = match budget(fields.get("max_completion_tokens"), "max_completion_tokens")? {
        Some(n) => Some(n),
        None => budget(fields.get("max_tokens"), "max_tokens")?,
    };
    r.prompt_tokens = match r.route.endpoint {
        Endpoint::V1Chat => chat_tokens(fields.get("messages"))?,
        _ => prompt_tokens(fields.get("prompt"))?,
    };
    Ok(Parsed::Generate(r))
}

fn ollama(mut r: GenRequest, fields: &Fields) -> Result<Parsed, Reject> {
    r.model = match fields.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) if m.is_empty() => None,
        Some(Value::String(m)) => Some(m.clone()),
        Some(_) => return Err(schema("'model' must be a string")),
    };
    // Ollama streams unless told not to.
    r.stream = match fields.get("stream") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(schema("'stream' must be a boolean")),
    };
    r.max_tokens = match fields.get("options") {
        None | Some(Value::Null) => None,
        Some(Value::Object(options)) => match options.get("num_predict") {
            None | Some(Value::Null) => None,
            // -1 is "no limit", -2 "fill the context": no budget either way.
            Some(v) => match v.as_i64() {
                Some(n) if n <= 0 => None,
                Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
                None => return Err(schema("'options.num_predict' must be an integer")),
            },
        },
        Some(_) => return Err(schema("'options' must be an object")),
    };
    let load = Parsed::Load {
        model: r.model.clone(),
    };
    if r.route.endpoint == Endpoint::OllamaChat {
        match fields.get("messages") {
            None | Some(Value::Null) => return Ok(load),
            Some(Value::Array(m)) if m.is_empty() => return Ok(load),
            messages => r.prompt_tokens = chat_tokens(messages)?,
        }
    } else {
        match fields.get("prompt") {
            None | Some(Value::Null) => return Ok(load),
            Some(Value::String(p)) if p.is_empty() => return Ok(load),
            Some(Value::String(p)) => r.prompt_tokens = count_tokens(p),
            Some(_) => return Err(schema("'prompt' must be a string")),
        }
        if let Some(Value::String(system)) = fields.get("system") {
            r.prompt_tokens = r.prompt_tokens.saturating_add(count_tokens(system));
        }
    }
    Ok(Parsed::Generate(r))
}

fn tgi(mut r: GenRequest, fields: &Fields) -> Result<Parsed, Reject> {
    r.prompt = match fields.get("inputs") {
        Some(Value::String(inputs)) => inputs.clone(),
        None => return Err(schema("missing field `inputs`")),
        Some(_) => return Err(schema("invalid type for field `inputs`: expected a string")),
    };
    r.prompt_tokens = count_tokens(&r.prompt);
    r.stream = r.route.endpoint == Endpoint::TgiGenerateStream;
    let empty = Fields::new();
    let parameters = match fields.get("parameters") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => return Err(schema("invalid type for field `parameters`")),
    };
    r.details = optional_bool(parameters.get("details"), "details")?;
    r.seed = match parameters.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| schema("invalid type for field `seed`: expected u64"))?,
        ),
    };
    r.max_tokens = match parameters.get("max_new_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) if n <= 0 => {
                return Err(Reject::Validation(
                    "Input validation error: `max_new_tokens` must be strictly positive".to_owned(),
                ))
            }
            Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
            None => return Err(schema("invalid type for field `max_new_tokens`")),
        },
    };
    if r.prompt_tokens == 0 {
        return Err(Reject::Validation(
            "Input validation error: `inputs` cannot be empty".to_owned(),
        ));
    }
    Ok(Parsed::Generate(r))
}

fn llamacpp(mut r: GenRequest, fields: &Fields) -> Result<Parsed, Reject> {
    r.stream = optional_bool(fields.get("stream"), "stream")?;
    let prompt = fields.get("prompt");
    r.prompt_tokens = prompt_tokens(prompt)?;
    if let Some(Value::String(text)) = prompt {
        r.prompt = text.clone();
    }
    let n_predict = match fields.get("n_predict") {
        None | Some(Value::Null) => fields.get("max_tokens"),
        n => n,
    };
    r.max_tokens = match n_predict {
        None | Some(Value::Null) => None,
        // -1 means "until the end of the context": no budget.
        Some(v) => match v.as_i64() {
            Some(n) if n < 0 => None,
            Some(0) => {
                return Err(Reject::Validation(
                    "'n_predict' must be at least 1".to_owned(),
                ))
            }
            Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
            None => return Err(schema("'n_predict' must be an integer")),
        },
    };
    Ok(Parsed::Generate(r))
}

fn schema(message: &str) -> Reject {
    Reject::Schema(message.to_owned())
}

fn optional_bool(value: Option<&Value>, name: &str) -> Result<bool, Reject> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Reject::Schema(format!("'{name}' must be a boolean"))),
    }
}

fn budget(value: Option<&Value>, name: &str) -> Result<Option<u32>, Reject> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(0) => Err(Reject::Validation(format!("'{name}' must be at least 1"))),
            Some(n) => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
            None => Err(Reject::Validation(format!(
                "'{name}' must be a positive integer"
            ))),
        },
    }
}

fn chat_tokens(messages: Option<&Value>) -> Result<u32, Reject> {
    let messages = match messages {
        None | Some(Value::Null) => return Err(schema("'messages' is required")),
        Some(Value::Array(messages)) if messages.is_empty() => {
            return Err(Reject::Validation(
                "'messages' must not be empty".to_owned(),
            ));
        }
        Some(Value::Array(messages)) => messages,
        Some(_) => return Err(schema("'messages' must be an array")),
    };
    let mut counts = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let Value::Object(message) = message else {
            return Err(Reject::Schema(format!("'messages[{i}]' must be an object")));
        };
        let tokens = match message.get("content") {
            None | Some(Value::Null) => 0,
            Some(Value::String(text)) => count_tokens(text),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .map(count_tokens)
                .fold(0u32, u32::saturating_add),
            Some(_) => {
                return Err(Reject::Schema(format!(
                    "'messages[{i}].content' must be a string or an array of parts"
                )));
            }
        };
        counts.push(tokens);
    }
    Ok(chat_prompt_tokens(counts))
}

/// Tokens of a completion prompt: a string, an array of strings (counted
/// together), an array of token ids, or an array of arrays of ids; llama.cpp
/// also mixes strings and ids in one array.
fn prompt_tokens(prompt: Option<&Value>) -> Result<u32, Reject> {
    const SHAPE: &str = "'prompt' must be a string, an array of strings or an array of token ids";
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let item = |v: &Value| -> Option<u32> {
        match v {
            Value::String(text) => Some(count_tokens(text)),
            Value::Number(n) if n.is_u64() => Some(1),
            Value::Array(ids) if ids.iter().all(Value::is_u64) => Some(to_u32(ids.len())),
            _ => None,
        }
    };
    match prompt {
        None | Some(Value::Null) => Err(schema("'prompt' is required")),
        Some(Value::String(text)) => Ok(count_tokens(text)),
        Some(Value::Array(items)) => items
            .iter()
            .map(item)
            .try_fold(0u32, |sum, n| n.map(|n| sum.saturating_add(n)))
            .ok_or_else(|| schema(SHAPE)),
        Some(_) => Err(schema(SHAPE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(protocol: Protocol, endpoint: Endpoint) -> Route {
        Route {
            protocol,
            endpoint,
            path: "/x",
        }
    }

    const CHAT: Route = Route {
        protocol: Protocol::OpenAi,
        endpoint: Endpoint::V1Chat,
        path: "/v1/chat/completions",
    };
    const COMPLETIONS: Route = Route {
        protocol: Protocol::OpenAi,
        endpoint: Endpoint::V1Completions,
        path: "/v1/completions",
    };

    fn ok(route: Route, body: &str) -> GenRequest {
        match parse(route, body.as_bytes()).expect("valid request") {
            Parsed::Generate(r) => r,
            Parsed::Load { .. } => panic!("a load request: {body}"),
        }
    }

    fn err(route: Route, body: &str) -> String {
        parse(route, body.as_bytes())
            .expect_err("invalid request")
            .message()
            .to_owned()
    }

    #[test]
    fn parses_chat_requests() {
        let r = ok(
            CHAT,
            r#"{"model":"x","messages":[{"role":"user","content":"Hello world"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}"#,
        );
        assert!(r.stream && r.include_usage);
        assert_eq!(r.prompt_tokens, 2 + 8 + 3);
        assert_eq!(r.max_tokens, Some(5));
        assert_eq!(r.route, CHAT);
        let r = ok(
            CHAT,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a b c"}]},{"role":"assistant","content":null}],"max_tokens":9,"max_completion_tokens":4}"#,
        );
        assert_eq!(r.prompt_tokens, 3 + 16 + 3);
        assert_eq!(r.max_tokens, Some(4));
        assert!(!r.stream);
    }

    #[test]
    fn parses_completion_prompts() {
        let tokens = |body: &str| ok(COMPLETIONS, body).prompt_tokens;
        assert_eq!(tokens(r#"{"prompt":"Once upon a time"}"#), 4);
        assert_eq!(tokens(r#"{"prompt":["a b","c"]}"#), 3);
        assert_eq!(tokens(r#"{"prompt":[1,2,3,4,5]}"#), 5);
        assert_eq!(tokens(r#"{"prompt":[[1,2],[3]]}"#), 3);
        assert_eq!(ok(COMPLETIONS, r#"{"prompt":"x"}"#).max_tokens, None);
    }

    #[test]
    fn parses_ollama_requests() {
        let chat = route(Protocol::Ollama, Endpoint::OllamaChat);
        let r = ok(
            chat,
            r#"{"model":"gemma3:1b","messages":[{"role":"user","content":"10 * 10"}],"options":{"num_predict":50}}"#,
        );
        assert!(r.stream, "Ollama streams by default");
        assert_eq!(r.model.as_deref(), Some("gemma3:1b"));
        assert_eq!(r.max_tokens, Some(50));
        assert_eq!(r.prompt_tokens, 3 + 8 + 3);
        let generate = route(Protocol::Ollama, Endpoint::OllamaGenerate);
        let r = ok(
            generate,
            r#"{"model":"m","prompt":"Why is the sky blue?","stream":false,"options":{"num_predict":-1}}"#,
        );
        assert!(!r.stream);
        assert_eq!(r.max_tokens, None);
        assert_eq!(r.prompt_tokens, 6);
        assert_eq!(
            parse(generate, br#"{"model":"llama3.2"}"#),
            Ok(Parsed::Load {
                model: Some("llama3.2".to_owned())
            })
        );
        assert_eq!(
            parse(chat, br#"{"messages":[]}"#),
            Ok(Parsed::Load { model: None })
        );
        assert_eq!(
            err(
                generate,
                r#"{"prompt":"x","options":{"num_predict":"many"}}"#
            ),
            "'options.num_predict' must be an integer"
        );
    }

    #[test]
    fn parses_tgi_requests() {
        let stream = route(Protocol::Tgi, Endpoint::TgiGenerateStream);
        let r = ok(
            stream,
            r#"{"inputs":"Test request","parameters":{"max_new_tokens":10,"details":true,"seed":18435558523380366744}}"#,
        );
        assert!(r.stream && r.details);
        assert_eq!(r.seed, Some(18_435_558_523_380_366_744));
        assert_eq!((r.prompt_tokens, r.max_tokens), (2, Some(10)));
        assert_eq!(r.prompt, "Test request");
        let generate = route(Protocol::Tgi, Endpoint::TgiGenerate);
        assert!(!ok(generate, r#"{"inputs":"x"}"#).stream);
        assert_eq!(
            parse(generate, br#"{"parameters":{}}"#),
            Err(Reject::Schema("missing field `inputs`".to_owned()))
        );
        assert!(matches!(
            parse(
                generate,
                br#"{"inputs":"x","parameters":{"max_new_tokens":0}}"#
            ),
            Err(Reject::Validation(_))
        ));
        assert!(matches!(parse(generate, b"{"), Err(Reject::Syntax(_))));
    }

    #[test]
    fn parses_llamacpp_requests() {
        let completion = route(Protocol::LlamaCpp, Endpoint::LlamaCompletion);
        let r = ok(
            completion,
            r#"{"prompt":"The capital of France is","n_predict":24,"stream":true}"#,
        );
        assert_eq!(
            (r.prompt_tokens, r.max_tokens, r.stream),
            (5, Some(24), true)
        );
        assert_eq!(r.prompt, "The capital of France is");
        assert_eq!(
            ok(completion, r#"{"prompt":["a b",7,[1,2]],"n_predict":-1}"#).prompt_tokens,
            5
        );
        assert_eq!(
            ok(
                completion,
                r#"{"prompt":"x","n_predict":-1,"max_tokens":3}"#
            )
            .max_tokens,
            None
        );
        assert_eq!(
            ok(completion, r#"{"prompt":"x","max_tokens":3}"#).max_tokens,
            Some(3)
        );
    }

    #[test]
    fn says_what_is_wrong() {
        assert!(err(CHAT, "{not json").starts_with("request body is not valid JSON"));
        assert_eq!(err(CHAT, "[1]"), "request body must be a JSON object");
        assert_eq!(
            err(CHAT, r#"{"model":"x","max_tokens":5}"#),
            "'messages' is required"
        );
        assert_eq!(
            err(CHAT, r#"{"messages":[]}"#),
            "'messages' must not be empty"
        );
        assert_eq!(
            err(CHAT, r#"{"messages":"hi"}"#),
            "'messages' must be an array"
        );
        assert_eq!(
            err(CHAT, r#"{"messages":[1]}"#),
            "'messages[0]' must be an object"
        );
        assert_eq!(err(COMPLETIONS, r#"{"model":"x"}"#), "'prompt' is required");
        assert!(err(COMPLETIONS, r#"{"prompt":{"a":1}}"#).starts_with("'prompt' must be"));
        assert_eq!(
            err(COMPLETIONS, r#"{"prompt":"x","max_tokens":0}"#),
            "'max_tokens' must be at least 1"
        );
        assert_eq!(
            err(COMPLETIONS, r#"{"prompt":"x","max_tokens":-3}"#),
            "'max_tokens' must be a positive integer"
        );
        assert_eq!(
            err(COMPLETIONS, r#"{"prompt":"x","stream":"yes"}"#),
            "'stream' must be a boolean"
        );
        assert_eq!(
            err(
                COMPLETIONS,
                r#"{"prompt":"x","stream_options":{"include_usage":1}}"#
            ),
            "'stream_options.include_usage' must be a boolean"
        );
    }
}
