//! The host side of the proxy-wasm ABI (0.2.1) and the few WASI calls the module makes,
//! as a fake Envoy for `wasm_request_cost`: every import the module declares is linked to
//! [`host_call`], which counts the call (a crossing out of the module) and answers it from
//! one fixed request, as Envoy would. An import this fake does not know, or one the bench's
//! request should never make (a local reply), fails the run with its name: the probe must
//! not measure a module that behaves differently from the one `make bench` runs.

use std::collections::BTreeMap;

use wasmi::{Caller, Error, Linker, Module, Val};

use super::module_memory::{read, return_bytes, write, write_u32};
use audit_filter_core::request::header_map::{parse_header_map, serialize_header_map, RequestHeaders};

/// The request `make bench` sends, with the headers Envoy adds before the filter sees it
/// (as `native_request_cost` and the core's `request_cost`).
pub const REQUEST: [(&str, &str); 10] = [
    (":method", "GET"),
    (":path", "/pacticipants/Foo/versions/1.0.0"),
    (":authority", "127.0.0.1:10000"),
    (":scheme", "http"),
    ("user-agent", "pact_broker-client/1.75.1 (ruby 3.2.2; x86_64-linux)"),
    ("x-forwarded-email", "alice@example.com"),
    ("x-forwarded-for", "127.0.0.1"),
    ("x-forwarded-proto", "http"),
    ("x-request-id", "2f7c1c9e-5b0e-4a53-9a43-7b8f2d1e6a10"),
    ("x-envoy-expected-rq-timeout-ms", "15000"),
];
pub const PEER: &str = "127.0.0.1:51234";
/// `request.time` (ns since the epoch), `request.duration` (ns) and `response.code`.
pub const REQUEST_TIME_NANOS: i64 = 1_575_929_724_864_123_456;
const REQUEST_DURATION_NANOS: i64 = 1_500_000;
pub const RESPONSE_CODE: i64 = 200;

// proxy-wasm's Status, MapType and BufferType values (the ABI's numbers).
const OK: i32 = 0;
const NOT_FOUND: i32 = 1;
const HTTP_REQUEST_HEADERS: i32 = 0;
const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
const HTTP_CALL_RESPONSE_BODY: i32 = 4;
const PLUGIN_CONFIGURATION: i32 = 7;
/// WASI's errno for success.
const ERRNO_SUCCESS: i32 = 0;

/// A call the module dispatched (`proxy_http_call`) and that has not been answered yet.
pub struct Dispatched {
    pub token: u32,
    pub cluster: String,
    pub headers: RequestHeaders,
    pub body: Vec<u8>,
}

/// The answer being handed to the module in `proxy_on_http_call_response`.
pub struct Answer {
    pub status: String,
    pub body: Vec<u8>,
}

/// What Envoy knows of the module: its configuration, the active stream's request, the
/// calls it made; and what the probe reports: every host call, by import.
pub struct FakeEnvoy {
    /// Host calls made by the module, by import (and, for properties and header lookups,
    /// by what was asked): the crossings the budget counts.
    pub calls: BTreeMap<String, u64>,
    pub plugin_configuration: Vec<u8>,
    /// `NAME=value` entries the module's `std::env::var` reads (WASI `environ_get`).
    pub environment: Vec<String>,
    /// The active stream's request headers: the module removes untrusted identity headers.
    pub request: Vec<(String, String)>,
    pub clock_nanos: u64,
    /// The state of the deterministic `random_get`.
    pub random_state: u64,
    pub dispatched: Vec<Dispatched>,
    pub next_token: u32,
    pub answer: Option<Answer>,
    pub tick_period_ms: u32,
    /// Messages logged at warning level or above, with their level.
    pub complaints: Vec<(i32, String)>,
    pub effective_context: u32,
}

impl FakeEnvoy {
    pub fn new(plugin_configuration: &str, environment: &[&str]) -> FakeEnvoy {
        FakeEnvoy {
            calls: BTreeMap::new(),
            plugin_configuration: plugin_configuration.as_bytes().to_vec(),
            environment: environment.iter().map(|entry| (*entry).to_owned()).collect(),
            request: Vec::new(),
            clock_nanos: 1_575_929_724_000_000_000,
            random_state: 0x9e37_79b9_7f4a_7c15,
            dispatched: Vec::new(),
            next_token: 1,
            answer: None,
            tick_period_ms: 0,
            complaints: Vec::new(),
            effective_context: 0,
        }
    }

    /// A new stream: the request as it arrives.
    pub fn new_request(&mut self) {
        self.request = REQUEST.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
    }

    pub fn host_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// The next 8 deterministic "random" bytes (splitmix64): the same uuids every run.
    fn random_bytes(&mut self) -> [u8; 8] {
        self.random_state = self.random_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.random_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }
}

/// Links every import of `module` to [`host_call`] under its own name and type.
pub fn link_imports(linker: &mut Linker<FakeEnvoy>, module: &Module) -> Result<(), Error> {
    for import in module.imports() {
        let Some(ty) = import.ty().func() else {
            return Err(Error::new(format!(
                "the module imports {}.{}, which is not a function",
                import.module(),
                import.name()
            )));
        };
        let name = format!("{}.{}", import.module(), import.name());
        linker.func_new(import.module(), import.name(), ty.clone(), move |mut caller, params, results| {
            host_call(&name, &mut caller, params, results)
        })?;
    }
    Ok(())
}

fn count(caller: &mut Caller<'_, FakeEnvoy>, key: String) {
    *caller.data_mut().calls.entry(key).or_default() += 1;
}

/// One host call of the module: counted, then answered as Envoy would for the bench's
/// request. The result is the call's status (proxy-wasm) or errno (WASI).
fn host_call(name: &str, caller: &mut Caller<'_, FakeEnvoy>, params: &[Val], results: &mut [Val]) -> Result<(), Error> {
    let arg = |index: usize| -> Result<u32, Error> {
        match params.get(index) {
            Some(Val::I32(value)) => Ok(*value as u32),
            Some(Val::I64(value)) => Ok(*value as u32),
            _ => Err(Error::new(format!("{name}: argument {index} is not an integer"))),
        }
    };
    let import = name.rsplit('.').next().unwrap_or(name);
    let status = match import {
        "proxy_log" => {
            count(caller, name.to_owned());
            let level = arg(0)? as i32;
            let message = String::from_utf8_lossy(&read(caller, arg(1)?, arg(2)?)?).into_owned();
            if level >= 3 {
                caller.data_mut().complaints.push((level, message));
            }
            OK
        }
        "proxy_get_log_level" => {
            count(caller, name.to_owned());
            write_u32(caller, arg(0)?, 2)?;
            OK
        }
        "proxy_get_current_time_nanoseconds" => {
            count(caller, name.to_owned());
            let now = caller.data().clock_nanos;
            write(caller, arg(0)?, &now.to_le_bytes())?;
            OK
        }
        "proxy_set_tick_period_milliseconds" => {
            count(caller, name.to_owned());
            caller.data_mut().tick_period_ms = arg(0)?;
            OK
        }
        "proxy_get_buffer_bytes" => {
            count(caller, name.to_owned());
            let (kind, start, max) = (arg(0)? as i32, arg(1)? as usize, arg(2)? as usize);
            let buffer = match kind {
                PLUGIN_CONFIGURATION => caller.data().plugin_configuration.clone(),
                HTTP_CALL_RESPONSE_BODY => caller.data().answer.as_ref().map(|a| a.body.clone()).unwrap_or_default(),
                other => {
                    return Err(Error::new(format!("{name}: buffer type {other} is never read by the audit filter")))
                }
            };
            let part = buffer.get(start..).unwrap_or_default();
            return_bytes(caller, &part[..part.len().min(max)], arg(3)?, arg(4)?)?;
            OK
        }
        "proxy_get_header_map_pairs" => {
            count(caller, name.to_owned());
            if arg(0)? as i32 != HTTP_REQUEST_HEADERS {
                return Err(Error::new(format!("{name}: map type {} is never read by the audit filter", arg(0)?)));
            }
            let request = &caller.data().request;
            let serialized =
                serialize_header_map(request.iter().map(|(name, value)| (name.as_bytes(), value.as_bytes())));
            return_bytes(caller, &serialized, arg(1)?, arg(2)?)?;
            OK
        }
        "proxy_get_header_map_value" => {
            let key = String::from_utf8_lossy(&read(caller, arg(1)?, arg(2)?)?).into_owned();
            count(caller, format!("{name}({key})"));
            let value = match arg(0)? as i32 {
                HTTP_REQUEST_HEADERS => caller.data().request.iter().find(|(n, _)| *n == key).map(|(_, v)| v.clone()),
                HTTP_CALL_RESPONSE_HEADERS => {
                    caller.data().answer.as_ref().filter(|_| key == ":status").map(|answer| answer.status.clone())
                }
                other => return Err(Error::new(format!("{name}: map type {other} is never read by the audit filter"))),
            };
            match value {
                Some(value) => {
                    return_bytes(caller, value.as_bytes(), arg(3)?, arg(4)?)?;
                    OK
                }
                None => NOT_FOUND,
            }
        }
        "proxy_remove_header_map_value" => {
            let key = String::from_utf8_lossy(&read(caller, arg(1)?, arg(2)?)?).into_owned();
            count(caller, format!("{name}({key})"));
            if arg(0)? as i32 != HTTP_REQUEST_HEADERS {
                return Err(Error::new(format!("{name}: map type {} is never changed by the audit filter", arg(0)?)));
            }
            caller.data_mut().request.retain(|(header, _)| *header != key);
            OK
        }
        "proxy_get_property" => {
            let path = read(caller, arg(0)?, arg(1)?)?;
            let dotted = String::from_utf8_lossy(&path).replace('\0', ".");
            count(caller, format!("{name}({dotted})"));
            let value = match dotted.as_str() {
                "source.address" => Some(PEER.as_bytes().to_vec()),
                "request.time" => Some(REQUEST_TIME_NANOS.to_le_bytes().to_vec()),
                "request.duration" => Some(REQUEST_DURATION_NANOS.to_le_bytes().to_vec()),
                "response.code" => Some(RESPONSE_CODE.to_le_bytes().to_vec()),
                _ => None,
            };
            match value {
                Some(value) => {
                    return_bytes(caller, &value, arg(2)?, arg(3)?)?;
                    OK
                }
                None => NOT_FOUND,
            }
        }
        "proxy_http_call" => {
            count(caller, name.to_owned());
            let cluster = String::from_utf8_lossy(&read(caller, arg(0)?, arg(1)?)?).into_owned();
            let headers = parse_header_map(read(caller, arg(2)?, arg(3)?)?)
                .ok_or_else(|| Error::new(format!("{name}: the call's headers are not a proxy-wasm map")))?;
            let body = read(caller, arg(4)?, arg(5)?)?;
            let token = caller.data().next_token;
            caller.data_mut().next_token += 1;
            write_u32(caller, arg(9)?, token)?;
            caller.data_mut().dispatched.push(Dispatched { token, cluster, headers, body });
            OK
        }
        "proxy_set_effective_context" => {
            count(caller, name.to_owned());
            caller.data_mut().effective_context = arg(0)?;
            OK
        }
        "proxy_define_metric" | "proxy_increment_metric" => {
            count(caller, name.to_owned());
            if import == "proxy_define_metric" {
                let id = caller.data().calls.get(name).copied().unwrap_or(0) as u32;
                write_u32(caller, arg(3)?, id)?;
            }
            OK
        }
        "environ_sizes_get" => {
            count(caller, name.to_owned());
            let environment = caller.data().environment.clone();
            let bytes: usize = environment.iter().map(|entry| entry.len() + 1).sum();
            write_u32(caller, arg(0)?, environment.len() as u32)?;
            write_u32(caller, arg(1)?, bytes as u32)?;
            ERRNO_SUCCESS
        }
        "environ_get" => {
            count(caller, name.to_owned());
            let (mut pointers, mut buffer) = (arg(0)?, arg(1)?);
            for entry in caller.data().environment.clone() {
                write_u32(caller, pointers, buffer)?;
                let mut bytes = entry.into_bytes();
                bytes.push(0);
                write(caller, buffer, &bytes)?;
                pointers += 4;
                buffer += bytes.len() as u32;
            }
            ERRNO_SUCCESS
        }
        "random_get" => {
            count(caller, name.to_owned());
            let mut bytes = vec![0u8; arg(1)? as usize];
            for chunk in bytes.chunks_mut(8) {
                let random = caller.data_mut().random_bytes();
                chunk.copy_from_slice(&random[..chunk.len()]);
            }
            write(caller, arg(0)?, &bytes)?;
            ERRNO_SUCCESS
        }
        // A local reply (the request refused), a resumed or ended stream, `proxy_done`:
        // none of them happens to the bench's request on a worker whose announcement was
        // acknowledged; one that does is a change of behaviour, not of cost.
        _ => return Err(Error::new(format!("the module called {name}, which the bench's request never needs"))),
    };
    match results.first_mut() {
        Some(result) => *result = Val::I32(status),
        None if status == OK => {}
        None => return Err(Error::new(format!("{name}: failed with status {status} and has no result to say so"))),
    }
    Ok(())
}
