//! The module's memory as a host reads and writes it (the fake Envoy, [`super::fake_envoy`]): the
//! bytes of a call's arguments, the values it hands back in memory the module allocates (as
//! Envoy does).

use wasmi::{Caller, Error, Extern};

fn memory<T>(caller: &Caller<'_, T>) -> Result<wasmi::Memory, Error> {
    caller.get_export("memory").and_then(Extern::into_memory).ok_or_else(|| Error::new("the module exports no memory"))
}

pub fn read<T>(caller: &Caller<'_, T>, pointer: u32, size: u32) -> Result<Vec<u8>, Error> {
    let mut bytes = vec![0u8; size as usize];
    memory(caller)?
        .read(caller, pointer as usize, &mut bytes)
        .map_err(|_| Error::new("read out of the module's memory"))?;
    Ok(bytes)
}

pub fn write<T>(caller: &mut Caller<'_, T>, pointer: u32, bytes: &[u8]) -> Result<(), Error> {
    memory(caller)?.write(caller, pointer as usize, bytes).map_err(|_| Error::new("write out of the module's memory"))
}

pub fn write_u32<T>(caller: &mut Caller<'_, T>, pointer: u32, value: u32) -> Result<(), Error> {
    write(caller, pointer, &value.to_le_bytes())
}

/// Hands `bytes` to the module as Envoy does: in memory the module allocates
/// (`proxy_on_memory_allocate`, whose instructions count like any other), its address and
/// size written where the module asked.
pub fn return_bytes<T>(caller: &mut Caller<'_, T>, bytes: &[u8], data_at: u32, size_at: u32) -> Result<(), Error> {
    let allocate = caller
        .get_export("proxy_on_memory_allocate")
        .and_then(Extern::into_func)
        .ok_or_else(|| Error::new("the module exports no proxy_on_memory_allocate"))?;
    let pointer = allocate.typed::<i32, i32>(&*caller)?.call(&mut *caller, bytes.len() as i32)? as u32;
    write(caller, pointer, bytes)?;
    write_u32(caller, data_at, pointer)?;
    write_u32(caller, size_at, bytes.len() as u32)
}
