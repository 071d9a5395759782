//! [`AuditPage`]: the body of `GET /audit`, PactFlow's HAL shape. `_links.next` is the URL
//! of the page that starts with the next event, and is absent on the last page.
//!
//! The page is generic over the event so the collector can send stored JSON as it is
//! (`AuditPage<Box<RawValue>>`) while clients read typed events (`AuditPage<AuditEvent>`).

use serde::{Deserialize, Serialize};

use crate::event::AuditEvent;

/// The path of the paged trail. Envoy routes it, and everything under `/audit/`, to the
/// collector, on the audited service's own host.
pub const AUDIT_PATH: &str = "/audit";

/// The path of the collector's OpenAPI document.
pub const OPENAPI_PATH: &str = "/audit/openapi.json";

/// The largest page `GET /audit` returns, and its default size.
pub const MAX_PAGE_SIZE: usize = 100;

/// One page of the trail, in sequence order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage<E = AuditEvent> {
    /// The events of this page.
    pub events: Vec<E>,
    /// `self` and, unless this is the last page, `next`.
    #[serde(rename = "_links")]
    pub links: PageLinks,
}

/// The HAL links of a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageLinks {
    /// This page's URL.
    #[serde(rename = "self")]
    pub this: Link,
    /// The next page's URL (`?from=<uuid of its first event>`); absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Link>,
}

/// A HAL link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// An absolute URL.
    pub href: String,
}
