//! Routes, read from the SAM template.

use serde_yaml_ng::Value;
use std::path::Path;

/// An HTTP API route and the function (binary) behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: String,
    /// As in the template: `/api/v1/payments/{id}/confirm`.
    pub path: String,
    pub function: String,
}

impl HttpRoute {
    /// The route key API Gateway puts in events: `POST /api/v1/payments/{id}/confirm`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Matches a request path; returns the path parameters on a match.
    pub fn matches(&self, method: &str, path: &str) -> Option<Vec<(String, String)>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let want: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let got: Vec<&str> = path.trim_matches('/').split('/').collect();
        if want.len() != got.len() {
            return None;
        }
        let mut params = Vec::new();
        for (w, g) in want.iter().zip(&got) {
            if let Some(name) = w.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                if g.is_empty() {
                    return None;
                }
                params.push((name.to_string(), (*g).to_string()));
            } else if w != g {
                return None;
            }
        }
        Some(params)
    }

    /// How specific the route is: literal segments beat `{params}` (as in API Gateway).
    fn specificity(&self) -> usize {
        self.path.split('/').filter(|s| !s.starts_with('{')).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("template: {0}")]
    Invalid(String),
}

/// A WebSocket API route (`$connect`, `$disconnect`, `$default` or an action name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsRoute {
    pub route_key: String,
    pub function: String,
    /// Whether the function's reply is sent back to the client (a route response exists).
    pub two_way: bool,
}

/// The functions and routes of a SAM template.
#[derive(Debug, Clone, Default)]
pub struct Template {
    pub http_routes: Vec<HttpRoute>,
    pub ws_routes: Vec<WsRoute>,
    /// `$request.body.<field>`: the message field that selects a route.
    pub ws_selection_field: Option<String>,
    /// Every function binary the template deploys.
    pub functions: Vec<String>,
}

/// The string inside `!Sub "..."`, `{"Fn::Sub": "..."}` or a plain string.
fn sub_string(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Tagged(t) if t.tag == "Sub" || t.tag == "!Sub" => t.value.as_str(),
        Value::Mapping(m) => m.get("Fn::Sub").and_then(Value::as_str),
        _ => None,
    }
}

/// The names referenced as `${Name}` or `${Name.Attr}` in a `!Sub` string.
fn sub_refs(s: &str) -> Vec<&str> {
    s.split("${")
        .skip(1)
        .filter_map(|part| part.split('}').next())
        .map(|r| r.split('.').next().unwrap_or(r))
        .collect()
}

impl Template {
    pub fn load(path: &Path) -> Result<Template, TemplateError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TemplateError::Read(path.display().to_string(), e))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let doc: Value = serde_yaml_ng::from_str(text)?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| TemplateError::Invalid("no Resources".into()))?;
        let mut template = Template::default();
        let mut binaries = std::collections::HashMap::new();
        for (logical_id, resource) in resources {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let id = logical_id.as_str().unwrap_or("?");
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    TemplateError::Invalid(format!("{id} has no Metadata.BuildProperties.Binary"))
                })?;
            template.functions.push(binary.to_string());
            binaries.insert(id.to_string(), binary.to_string());
            let events = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping);
            for (_, event) in events.into_iter().flatten() {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let props = event.get("Properties");
                let field = |name: &str| {
                    props
                        .and_then(|p| p.get(name))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            TemplateError::Invalid(format!("{id}: HttpApi event without {name}"))
                        })
                };
                template.http_routes.push(HttpRoute {
                    method: field("Method")?.to_uppercase(),
                    path: field("Path")?,
                    function: binary.to_string(),
                });
            }
        }
        template.read_websocket_api(resources, &binaries)?;
        // Most specific first, so `/payments/intent` wins over `/payments/{id}`.
        template
            .http_routes
            .sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        Ok(template)
    }

    fn read_websocket_api(
        &mut self,
        resources: &serde_yaml_ng::Mapping,
        binaries: &std::collections::HashMap<String, String>,
    ) -> Result<(), TemplateError> {
        let of_type = |ty: &'static str| {
            resources
                .iter()
                .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
                .map(|(k, r)| (k.as_str().unwrap_or("?"), r))
        };
        for (_, api) in of_type("AWS::ApiGatewayV2::Api") {
            let props = api.get("Properties");
            if props
                .and_then(|p| p.get("ProtocolType"))
                .and_then(Value::as_str)
                == Some("WEBSOCKET")
            {
                self.ws_selection_field = props
                    .and_then(|p| p.get("RouteSelectionExpression"))
                    .and_then(Value::as_str)
                    .and_then(|e| e.strip_prefix("$request.body."))
                    .map(str::to_string);
            }
        }
        let two_way: Vec<String> = of_type("AWS::ApiGatewayV2::RouteResponse")
            .filter_map(|(_, r)| {
                let route = r.get("Properties")?.get("RouteId")?;
                match route {
                    Value::Tagged(t) if t.tag == "Ref" || t.tag == "!Ref" => {
                        t.value.as_str().map(str::to_string)
                    }
                    Value::Mapping(m) => m.get("Ref").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                }
            })
            .collect();
        for (route_id, route) in of_type("AWS::ApiGatewayV2::Route") {
            let props = route.get("Properties");
            let key = props
                .and_then(|p| p.get("RouteKey"))
                .and_then(Value::as_str)
                .ok_or_else(|| TemplateError::Invalid(format!("{route_id} has no RouteKey")))?;
            // Target: !Sub integrations/${Integration} -> IntegrationUri: !Sub ...${Function.Arn}...
            let integration = props
                .and_then(|p| p.get("Target"))
                .and_then(sub_string)
                .and_then(|t| sub_refs(t).into_iter().next())
                .ok_or_else(|| {
                    TemplateError::Invalid(format!("{route_id} has no Target integration"))
                })?;
            let function = resources
                .get(integration)
                .and_then(|i| i.get("Properties"))
                .and_then(|p| p.get("IntegrationUri"))
                .and_then(sub_string)
                .and_then(|uri| sub_refs(uri).into_iter().find_map(|r| binaries.get(r)))
                .ok_or_else(|| {
                    TemplateError::Invalid(format!(
                        "{route_id}: integration {integration} names no function"
                    ))
                })?;
            self.ws_routes.push(WsRoute {
                route_key: key.to_string(),
                function: function.clone(),
                two_way: two_way.iter().any(|r| r == route_id),
            });
        }
        Ok(())
    }

    /// The WebSocket route for a route key, falling back to `$default` for messages.
    pub fn ws_route(&self, key: &str) -> Option<&WsRoute> {
        self.ws_routes.iter().find(|r| r.route_key == key)
    }

    /// The route a client message goes to: the selection field's value if a route has that
    /// key, else `$default` (as API Gateway selects).
    pub fn ws_route_for_message(&self, body: &str) -> Option<&WsRoute> {
        let selected = self.ws_selection_field.as_deref().and_then(|field| {
            let json: serde_json::Value = serde_json::from_str(body).ok()?;
            let key = json.get(field)?.as_str()?.to_string();
            (!key.starts_with('$')).then_some(key)
        });
        selected
            .and_then(|k| self.ws_route(&k))
            .or_else(|| self.ws_route("$default"))
    }

    /// The route for a request, with its path parameters.
    pub fn route(&self, method: &str, path: &str) -> Option<(&HttpRoute, Vec<(String, String)>)> {
        self.http_routes
            .iter()
            .find_map(|r| r.matches(method, path).map(|p| (r, p)))
    }
}

/// `template.yaml` at the workspace root.
pub fn default_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_projects_template_routes_every_function() {
        let t = Template::load(&default_path()).expect("template.yaml");
        assert!(t.http_routes.len() >= 23, "{:?}", t.http_routes);
        let (route, params) = t
            .route("POST", "/api/v1/payments/intent")
            .expect("intent route");
        assert_eq!(route.function, "payments-intent");
        assert!(params.is_empty());
        let (route, params) = t
            .route("POST", "/api/v1/payments/0190/confirm")
            .expect("confirm route");
        assert_eq!(route.function, "payments-confirm");
        assert_eq!(params, vec![("id".to_string(), "0190".to_string())]);
        let (route, _) = t.route("GET", "/api/v1/payments/abc").expect("get route");
        assert_eq!(route.function, "payments-get");
        assert!(t.route("DELETE", "/api/v1/payments/abc").is_none());
        assert!(t.route("GET", "/api/v1/nope").is_none());
    }

    #[test]
    fn websocket_routes_come_from_the_template() {
        let t = Template::load(&default_path()).expect("template.yaml");
        assert_eq!(t.ws_selection_field.as_deref(), Some("action"));
        let connect = t.ws_route("$connect").expect("$connect");
        assert_eq!(connect.function, "ws-connect");
        assert!(!connect.two_way);
        assert_eq!(
            t.ws_route("$disconnect").map(|r| r.function.as_str()),
            Some("ws-disconnect")
        );
        let default = t
            .ws_route_for_message(r#"{"action":"ping"}"#)
            .expect("$default");
        assert_eq!(default.function, "ws-default");
        assert!(default.two_way);
        assert_eq!(
            t.ws_route_for_message("not json")
                .map(|r| r.route_key.as_str()),
            Some("$default")
        );
        assert_eq!(
            t.ws_route_for_message(r#"{"action":"$connect"}"#)
                .map(|r| r.route_key.as_str()),
            Some("$default")
        );
    }

    #[test]
    fn every_function_crate_is_in_the_template_and_vice_versa() {
        let t = Template::load(&default_path()).expect("template.yaml");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../functions");
        let mut crates: Vec<String> = std::fs::read_dir(dir)
            .expect("functions/")
            .flatten()
            .filter(|e| e.path().join("Cargo.toml").exists())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        crates.sort();
        let mut deployed = t.functions.clone();
        deployed.sort();
        assert_eq!(crates, deployed);
    }
}
