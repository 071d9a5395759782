//! The bench's ablation build (feature `cost-stages`, never in the shipped wasm): the audit
//! filter's root and HTTP contexts wrapped, so each request stops after the stage the VM's
//! environment names (`AUDIT_BENCH_STAGE`). The wrapping is the only difference: the
//! shipped contexts have no branch for it. Work of a partial stage is dropped through
//! `black_box`, so the optimizer keeps what the full filter does.

use std::hint::black_box;

use log::error;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use super::http::AuditHttp;
use super::root::AuditRoot;
use super::worker::random_event_id;
use audit_filter_core::request::bounds::write_within_limit;
use audit_filter_core::request::capture::capture_event;
use audit_filter_core::request::cost_stage::{CostStage, CAPTURE_PROPERTIES, STAGE_ENV};
use audit_filter_core::request::host::RequestView;

/// The audit filter's root, and the stage its streams stop after.
pub struct StagedRoot {
    audit: AuditRoot,
    stage: CostStage,
}

impl Default for StagedRoot {
    fn default() -> Self {
        StagedRoot { audit: AuditRoot::default(), stage: CostStage::Full }
    }
}

impl Context for StagedRoot {
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize, num_trailers: usize) {
        self.audit.on_http_call_response(token_id, num_headers, body_size, num_trailers);
    }

    fn on_done(&mut self) -> bool {
        self.audit.on_done()
    }
}

impl RootContext for StagedRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        match CostStage::parse(std::env::var(STAGE_ENV).ok().as_deref()) {
            Ok(stage) => self.stage = stage,
            Err(problem) => {
                error!("audit-filter: `{STAGE_ENV}` {problem}");
                return false;
            }
        }
        self.audit.on_configure(plugin_configuration_size)
    }

    fn on_tick(&mut self) {
        self.audit.on_tick();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(StagedHttp { audit: self.audit.http_context(context_id), stage: self.stage }))
    }

    fn get_type(&self) -> Option<ContextType> {
        self.audit.get_type()
    }
}

/// One stream of the audit filter, stopped after `stage`.
struct StagedHttp {
    audit: AuditHttp,
    stage: CostStage,
}

impl Context for StagedHttp {}

impl HttpContext for StagedHttp {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        match self.stage {
            CostStage::Callbacks => Action::Continue,
            _ => self.audit.on_http_request_headers(num_headers, end_of_stream),
        }
    }

    fn on_log(&mut self) {
        match self.stage {
            CostStage::Full => self.audit.on_log(),
            stage => log_until(&self.audit, stage),
        }
    }
}

/// What `on_log` does in a stage before `Full`.
fn log_until(audit: &AuditHttp, stage: CostStage) {
    let Some(worker) = &audit.worker else { return };
    let view = audit.view();
    match stage {
        CostStage::Callbacks | CostStage::RequestHeaders | CostStage::Full => {}
        CostStage::HostReads => {
            black_box(view.request_headers());
            for path in CAPTURE_PROPERTIES {
                black_box(view.property(path));
            }
            black_box(random_event_id());
            black_box(hostcalls::get_current_time().ok());
        }
        CostStage::Capture | CostStage::Json => {
            let mut event = capture_event(&view, &worker.config, worker.fingerprint_key.as_ref(), random_event_id());
            event.sender = worker.delivery.sender_seq();
            black_box(hostcalls::get_current_time().ok());
            if stage == CostStage::Json {
                let mut json = Vec::with_capacity(1024);
                black_box(write_within_limit(&mut json, &mut event).map(|()| json)).ok();
            }
            black_box(event);
        }
    }
}
