// The chain's arithmetic, as docs/verifying.md specifies it, with nothing from the page:
// the canonical form (RFC 8785 JCS), an event's link hash, a checkpoint's signed message.
// Pure functions over WebCrypto, so node's test runner checks them against the vector of
// docs/verifying.md (collector/ui/tests/canonical.test.mjs, run by `make test`).

/** JCS: keys sorted by UTF-16 code units, no whitespace, numbers and strings as ECMAScript writes them. */
export function canonicalJson(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const members = Object.keys(value)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`);
  return `{${members.join(',')}}`;
}

/** Bytes from hex; null when it is not even-length hex. */
export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 !== 0 || /[^0-9a-fA-F]/.test(text)) return null;
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** Lower-case hex of bytes. */
export function toHex(bytes) {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** SHA-256 of bytes, as hex. */
export async function sha256Hex(bytes) {
  return toHex(await crypto.subtle.digest('SHA-256', bytes));
}

/** The event as stored: the served event without its `chain` key. */
export function storedEvent(served) {
  const { chain: _link, ...stored } = served;
  return stored;
}

/** hash(seq) = SHA-256(prevHash || seq as 8-byte big-endian || canonical event), hex. */
export async function linkHash(prevHashHex, seq, storedEventValue) {
  const prev = fromHex(prevHashHex);
  if (!prev || prev.length !== 32) throw new Error('prevHash is not 64 hex digits');
  const body = new TextEncoder().encode(canonicalJson(storedEventValue));
  const message = new Uint8Array(32 + 8 + body.length);
  message.set(prev, 0);
  new DataView(message.buffer).setBigUint64(32, BigInt(seq), false);
  message.set(body, 40);
  return sha256Hex(message);
}

/** The bytes a checkpoint's signature covers: JCS of it without `signature`, plus the format. */
export function checkpointMessage(checkpoint) {
  const { signature: _signature, ...signed } = checkpoint;
  return new TextEncoder().encode(canonicalJson({ ...signed, format: 'audit-sidecar/checkpoint/v1' }));
}
