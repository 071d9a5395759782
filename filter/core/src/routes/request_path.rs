//! A raw request path made routable, by the broker's rules: the query is cut off, a
//! trailing `.csv`/`.svg`/`.json`/`.yaml` is stripped (it stands for an Accept header),
//! a path containing `//` is never routed, and a trailing slash is ignored. Borrowing only:
//! this runs on every request.

/// The extensions the broker turns into an Accept header, and the header each stands for.
const FILE_EXTENSION_ACCEPT: [(&str, &str); 4] =
    [(".csv", "text/csv"), (".svg", "image/svg+xml"), (".json", "application/hal+json"), (".yaml", "application/yaml")];

/// A path that routing may look at: its segments, without leading or trailing slash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoutablePath<'a> {
    /// The path after the extension was stripped (what static-asset checks look at).
    pub(crate) path: &'a str,
    /// The segments joined by `/`, e.g. `pacts/latest`; empty for `/`.
    segments_text: &'a str,
    segment_count: usize,
    /// The Accept header the stripped extension stands for.
    pub(crate) extension_accept: Option<&'static str>,
}

impl<'a> RoutablePath<'a> {
    /// `None` when the broker would not route the path at all (it does not start with `/`,
    /// or it contains `//`).
    pub(crate) fn parse(raw_path: &'a str) -> Option<Self> {
        let without_query = raw_path.split_once('?').map_or(raw_path, |(path, _)| path);
        let (path, extension_accept) = strip_file_extension(without_query);
        if path.contains("//") {
            return None;
        }
        let after_leading_slash = path.strip_prefix('/')?;
        let segments_text = after_leading_slash.strip_suffix('/').unwrap_or(after_leading_slash);
        let segment_count =
            if segments_text.is_empty() { 0 } else { segments_text.bytes().filter(|&byte| byte == b'/').count() + 1 };
        Some(Self { path, segments_text, segment_count, extension_accept })
    }

    pub(crate) fn segment_count(&self) -> usize {
        self.segment_count
    }

    /// The segments, raw (not percent-decoded).
    pub(crate) fn segments(&self) -> impl Iterator<Item = &'a str> {
        let text = self.segments_text;
        text.split('/').filter(move |_| !text.is_empty())
    }

    pub(crate) fn first_segment(&self) -> Option<&'a str> {
        self.segments().next()
    }

    pub(crate) fn last_segment(&self) -> Option<&'a str> {
        if self.segments_text.is_empty() {
            return None;
        }
        self.segments_text.rsplit('/').next()
    }
}

fn strip_file_extension(path: &str) -> (&str, Option<&'static str>) {
    for (extension, accept) in FILE_EXTENSION_ACCEPT {
        if let Some(stripped) = path.strip_suffix(extension) {
            return (stripped, Some(accept));
        }
    }
    (path, None)
}
