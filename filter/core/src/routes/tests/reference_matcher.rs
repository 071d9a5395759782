//! A deliberately naive matcher, written from the reference rules without the module's
//! code: it allocates freely, tries every route in order, and binds segments the way
//! Webmachine's `Route#bind` walks its spec. The tests trust its answer as the expected
//! first match.

use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub(super) struct ReferenceRoute {
    pub(super) label: String,
    pub(super) methods: Vec<String>,
    pub(super) template: String,
    pub(super) class: String,
    pub(super) resource_name: String,
    pub(super) bindings: Vec<(String, String)>,
}

/// The path's routing tokens, or `None` when the broker 404s before routing.
pub(super) fn routing_tokens(raw_path: &str) -> Option<Vec<String>> {
    let path = match raw_path.find('?') {
        Some(query_start) => &raw_path[..query_start],
        None => raw_path,
    };
    let path = match path.rfind('.') {
        Some(dot) if [".csv", ".svg", ".json", ".yaml"].contains(&&path[dot..]) => &path[..dot],
        _ => path,
    };
    if path.contains("//") || !path.starts_with('/') {
        return None;
    }
    let mut tokens: Vec<String> = path[1..].split('/').map(String::from).collect();
    while tokens.last().is_some_and(|token| token.is_empty()) {
        tokens.pop();
    }
    Some(tokens)
}

/// The first route in `routes` whose template binds `tokens`, with its params.
pub(super) fn first_match<'r>(
    routes: &'r [ReferenceRoute],
    tokens: &[String],
    method_filter: Option<&str>,
) -> Option<(&'r ReferenceRoute, BTreeMap<String, String>)> {
    routes
        .iter()
        .filter(|route| match method_filter {
            Some(method) => route.methods.iter().any(|listed| listed == method),
            None => true,
        })
        .find_map(|route| bind(route, tokens).map(|params| (route, params)))
}

fn bind(route: &ReferenceRoute, tokens: &[String]) -> Option<BTreeMap<String, String>> {
    let mut spec: Vec<&str> = route.template.split('/').skip(1).collect();
    if spec == [""] {
        spec.clear();
    }
    let mut params = BTreeMap::new();
    params.insert("resource_name".to_string(), route.resource_name.clone());
    for (key, value) in &route.bindings {
        params.insert(key.clone(), value.clone());
    }
    let mut remaining = tokens;
    let mut spec_left = spec.as_slice();
    loop {
        match (spec_left.first(), remaining.first()) {
            (None, None) => return Some(params),
            (Some(&"*"), _) => return Some(params),
            (_, None) | (None, _) => return None,
            (Some(spec_token), Some(token)) => {
                if let Some(name) = spec_token.strip_prefix(':') {
                    params.insert(name.to_string(), naive_percent_decode(token));
                } else if spec_token != token {
                    return None;
                }
            }
        }
        spec_left = &spec_left[1..];
        remaining = &remaining[1..];
    }
}

/// `%XX` decoding; anything invalid keeps the token as sent.
pub(super) fn naive_percent_decode(token: &str) -> String {
    let mut bytes = Vec::new();
    let mut chars = token.char_indices();
    while let Some((at, character)) = chars.next() {
        if character == '%' {
            let Some(hex) = token.get(at + 1..at + 3) else {
                return token.to_string();
            };
            let Ok(byte) = u8::from_str_radix(hex, 16) else {
                return token.to_string();
            };
            if hex.starts_with('+') || hex.starts_with('-') {
                return token.to_string();
            }
            bytes.push(byte);
            chars.next();
            chars.next();
        } else {
            let mut buffer = [0; 4];
            bytes.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|_| token.to_string())
}
