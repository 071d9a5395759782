//! A raw request path made routable, by the broker's rules: the query is cut off, a
//! trailing `.csv`/`.svg`/`.json`/`.yaml` is stripped (it stands for an Accept header),
//! a path containing `//` is never routed, and a trailing slash is ignored. Borrowing only:
//! this runs on every request.

/// The extensions the broker turns into an Accept header, and the header each stands for.
const FILE_EXTENSION_ACCEPT: [(&str, &str); 4] =
    [(".csv", "text/csv"), (".svg", "image/svg+xml"), (".json", "application/hal+json"), (".yaml", "application/yaml")];

/// How many segments are split once, at parse: routing compares a path's segments with
/// every candidate route's template, and splitting the text again for each (a `memchr` a
/// segment) was a third of the route table's instructions. Deeper paths split the rest when read.
const SPLIT_SEGMENTS: usize = 8;

/// A path that routing may look at: its segments, without leading or trailing slash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoutablePath<'a> {
    /// The path after the extension was stripped (what static-asset checks look at).
    pub(crate) path: &'a str,
    /// The segments joined by `/`, e.g. `pacts/latest`; empty for `/`.
    segments_text: &'a str,
    segment_count: usize,
    /// The first [`SPLIT_SEGMENTS`] segments (fewer are there: the rest are empty).
    first_segments: [&'a str; SPLIT_SEGMENTS],
    /// The text after them, `/`-separated; empty unless the path is deeper.
    deeper: &'a str,
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
        let mut first_segments = [""; SPLIT_SEGMENTS];
        let mut deeper = "";
        let mut segment_count = 0;
        if !segments_text.is_empty() {
            let mut start = 0;
            let ends = segments_text.bytes().enumerate().filter(|&(_, byte)| byte == b'/').map(|(at, _)| at);
            for end in ends.chain([segments_text.len()]) {
                match first_segments.get_mut(segment_count) {
                    Some(slot) => *slot = segments_text.get(start..end).unwrap_or_default(),
                    None if segment_count == SPLIT_SEGMENTS => deeper = segments_text.get(start..).unwrap_or_default(),
                    None => {}
                }
                segment_count += 1;
                start = end + 1;
            }
        }
        Some(Self { path, segments_text, segment_count, first_segments, deeper, extension_accept })
    }

    pub(crate) fn segment_count(&self) -> usize {
        self.segment_count
    }

    /// The segments, raw (not percent-decoded).
    pub(crate) fn segments(&self) -> impl Iterator<Item = &'a str> + '_ {
        let split = self.first_segments.get(..self.segment_count.min(SPLIT_SEGMENTS)).unwrap_or_default();
        let deeper = self.deeper;
        split.iter().copied().chain(deeper.split('/').filter(move |_| !deeper.is_empty()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The segments as the text splits, however deep the path (the split ones and the rest).
    #[test]
    fn segments_are_the_text_split_at_every_depth() {
        let mut path = String::new();
        for depth in 0..20 {
            for raw in [format!("{path}/"), format!("{path}/x.json?q=1"), path.clone()] {
                let Some(parsed) = RoutablePath::parse(&raw) else { continue };
                let text = parsed.segments_text;
                let expected: Vec<&str> = text.split('/').filter(|_| !text.is_empty()).collect();
                assert_eq!(parsed.segments().collect::<Vec<_>>(), expected, "{raw:?}");
                assert_eq!(parsed.segment_count(), expected.len(), "{raw:?}");
                assert_eq!(parsed.first_segment(), expected.first().copied(), "{raw:?}");
            }
            path.push_str(&format!("/s{depth}"));
        }
    }
}
