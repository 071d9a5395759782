//! The index that makes matching cheap while keeping first-match order: routes are grouped
//! by the segment count they can match and by their first literal segment. Each group lists
//! route positions in table order, already merged with the routes whose first segment is a
//! parameter, so a lookup yields exactly the routes worth trying, in the order to try them.

use std::collections::HashMap;

use super::template::{PathTemplate, TemplateSegment};

/// Candidate route positions by segment count and first segment. Built once per table.
#[derive(Debug, Clone, Default)]
pub(crate) struct SegmentIndex {
    /// Position `n`: routes that can match a path of `n` segments.
    by_segment_count: Box<[CandidateGroup]>,
    /// Paths longer than any template: only `*` routes can match them.
    longer_than_any_template: CandidateGroup,
}

#[derive(Debug, Clone, Default)]
struct CandidateGroup {
    /// First request segment → the routes to try, in table order.
    by_first_literal: HashMap<Box<str>, Box<[usize]>>,
    /// The routes to try when the first segment is no key above (or there is none).
    first_segment_is_open: Box<[usize]>,
}

impl SegmentIndex {
    pub(crate) fn build(templates: &[&PathTemplate]) -> Self {
        let longest = templates.iter().map(|template| template.segments.len()).max().unwrap_or(0);
        let by_segment_count = (0..=longest)
            .map(|segment_count| {
                let fits = templates.iter().enumerate().filter(|(_, template)| {
                    let fixed = template.segments.len();
                    fixed == segment_count || (template.matches_any_rest && fixed <= segment_count)
                });
                CandidateGroup::build(fits.collect())
            })
            .collect();
        let any_rest = templates.iter().enumerate().filter(|(_, template)| template.matches_any_rest);
        Self { by_segment_count, longer_than_any_template: CandidateGroup::build(any_rest.collect()) }
    }

    /// The positions of the routes that may match a path with these segments, in order.
    pub(crate) fn candidates(&self, segment_count: usize, first_segment: Option<&str>) -> &[usize] {
        let group = self.by_segment_count.get(segment_count).unwrap_or(&self.longer_than_any_template);
        first_segment.and_then(|first| group.by_first_literal.get(first)).unwrap_or(&group.first_segment_is_open)
    }
}

impl CandidateGroup {
    /// `fitting` lists (position, template) in table order.
    fn build(fitting: Vec<(usize, &&PathTemplate)>) -> Self {
        let first_literal = |template: &PathTemplate| match template.segments.first() {
            Some(TemplateSegment::Literal(literal)) => Some(literal.clone()),
            Some(TemplateSegment::Param(_)) | None => None,
        };
        let mut by_first_literal: HashMap<Box<str>, Box<[usize]>> = HashMap::new();
        for (_, template) in &fitting {
            let Some(literal) = first_literal(template) else {
                continue;
            };
            if by_first_literal.contains_key(&literal) {
                continue;
            }
            let positions = fitting
                .iter()
                .filter(|(_, other)| first_literal(other).is_none_or(|other| other == literal))
                .map(|(position, _)| *position)
                .collect();
            by_first_literal.insert(literal, positions);
        }
        let first_segment_is_open = fitting
            .iter()
            .filter(|(_, template)| first_literal(template).is_none())
            .map(|(position, _)| *position)
            .collect();
        Self { by_first_literal, first_segment_is_open }
    }
}
