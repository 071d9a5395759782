//! `on_log` of the bench's ablation build (feature `cost-stages`): the filter's work up to
//! the configured stage, its results dropped (through `black_box`, so the optimizer keeps
//! the work the full filter does). `on_http_request_headers` stops at `Callbacks` itself.

use std::hint::black_box;

use proxy_wasm::hostcalls;

use super::host_view::HostRequest;
use super::worker::{random_event_id, Worker};
use audit_filter_core::config_error::ConfigError;
use audit_filter_core::request::bounds::write_within_limit;
use audit_filter_core::request::capture::capture_event;
use audit_filter_core::request::cost_stage::{CostStage, CAPTURE_PROPERTIES, STAGE_ENV};
use audit_filter_core::request::host::RequestView;

/// The stage this VM's environment asks for (the whole filter when unset).
pub fn stage_from_environment() -> Result<CostStage, ConfigError> {
    CostStage::parse(std::env::var(STAGE_ENV).ok().as_deref())
        .map_err(|problem| ConfigError::Invalid { key: STAGE_ENV, problem })
}

/// What `on_log` does in a stage before `Full`.
pub fn log_until(worker: &Worker, view: &HostRequest<'_>) {
    match worker.stage {
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
            let mut event = capture_event(view, &worker.config, worker.fingerprint_key.as_ref(), random_event_id());
            event.sender = worker.delivery.sender_seq();
            black_box(hostcalls::get_current_time().ok());
            if worker.stage == CostStage::Json {
                let mut json = Vec::with_capacity(1024);
                black_box(write_within_limit(&mut json, &mut event).map(|()| json)).ok();
            }
            black_box(event);
        }
    }
}
