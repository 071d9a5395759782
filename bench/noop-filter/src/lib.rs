//! The floor of `make bench`: a proxy-wasm HTTP filter that does nothing. Envoy still
//! creates a context per request and calls into V8 for each stream event, which is the
//! price of loading any filter built with this SDK; the audit filter's own cost is what
//! it adds on top of this.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopRequest))
    }
}

struct NoopRequest;

impl Context for NoopRequest {}

impl HttpContext for NoopRequest {}
