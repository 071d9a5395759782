//! A route's path template (`/pacts/provider/:provider_name/latest`, `/hal-browser/*`)
//! parsed into segments and checked, so that matching never meets a malformed route.

use super::request::RESOURCE_NAME;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateSegment {
    /// Must equal the request's segment exactly (raw, not decoded).
    Literal(Box<str>),
    /// Matches any one segment; its percent-decoded value becomes param `name`.
    Param(Box<str>),
}

/// A parsed template: fixed segments, optionally followed by `*` (any remaining segments,
/// zero or more, as Webmachine's and Rack::Static's prefix matching do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    pub(crate) segments: Box<[TemplateSegment]>,
    pub(crate) matches_any_rest: bool,
}

impl PathTemplate {
    /// Parses `template`; the error says what is wrong with it (the caller adds where).
    pub(crate) fn parse(template: &str) -> Result<Self, String> {
        let Some(rest) = template.strip_prefix('/') else {
            return Err(format!("must start with `/` (got `{template}`)"));
        };
        if rest.is_empty() {
            return Ok(Self { segments: Box::new([]), matches_any_rest: false });
        }
        let pieces: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(pieces.len());
        let mut matches_any_rest = false;
        for (position, piece) in pieces.iter().enumerate() {
            let is_last = position + 1 == pieces.len();
            if piece.is_empty() {
                return Err(format!("has an empty segment (`//` or a trailing `/`) in `{template}`"));
            }
            if *piece == "*" {
                if !is_last {
                    return Err(format!("may use `*` only as the last segment (in `{template}`)"));
                }
                matches_any_rest = true;
            } else if let Some(name) = piece.strip_prefix(':') {
                check_param_name(name, template, &segments)?;
                segments.push(TemplateSegment::Param(name.into()));
            } else {
                segments.push(TemplateSegment::Literal((*piece).into()));
            }
        }
        Ok(Self { segments: segments.into_boxed_slice(), matches_any_rest })
    }

    /// The names of the `:param` segments, in order.
    pub(crate) fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            TemplateSegment::Param(name) => Some(&**name),
            TemplateSegment::Literal(_) => None,
        })
    }
}

fn check_param_name(name: &str, template: &str, earlier: &[TemplateSegment]) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("has a `:` parameter without a name in `{template}`"));
    }
    if name == RESOURCE_NAME {
        return Err(format!("may not name a parameter `:{RESOURCE_NAME}` (reserved for the route's resource name)"));
    }
    let repeated = earlier.iter().any(|segment| matches!(segment, TemplateSegment::Param(seen) if &**seen == name));
    if repeated {
        return Err(format!("names parameter `:{name}` twice in `{template}`"));
    }
    Ok(())
}
