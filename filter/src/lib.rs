//! audit-filter: placeholder while the filter is written.
