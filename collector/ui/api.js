// Talking to the collector: the read token (kept in sessionStorage, so it lives as long as
// this tab and is never a cookie), and JSON requests that turn an error answer into an
// ApiProblem carrying the collector's own explanation (problem+json `detail`).

const TOKEN_KEY = 'audit-sidecar.read-token';

/** A failed request: the HTTP status (0 when there was no answer) and what the collector said. */
export class ApiProblem extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }

  /** True when the token is the problem: missing, unknown, or not a read token. */
  get isTokenProblem() {
    return this.status === 401 || this.status === 403;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** GET `url` (same origin) with the bearer token; the parsed JSON, or an ApiProblem. */
export async function getJson(url, { withToken = true } = {}) {
  const headers = { Accept: 'application/json, application/hal+json' };
  const bearer = token();
  if (withToken && bearer) headers.Authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(url, { headers, credentials: 'omit', cache: 'no-store', redirect: 'error' });
  } catch (error) {
    throw new ApiProblem(0, `the collector could not be reached (${error.message})`);
  }
  if (!response.ok) throw new ApiProblem(response.status, await explain(response));
  try {
    return await response.json();
  } catch {
    throw new ApiProblem(response.status, 'the collector answered with something that is not JSON');
  }
}

async function explain(response) {
  const fallback = `HTTP ${response.status} ${response.statusText}`.trim();
  try {
    const problem = await response.json();
    return typeof problem.detail === 'string' ? problem.detail : fallback;
  } catch {
    return fallback;
  }
}

/** What to tell a person whose token was refused. */
export function tokenMessage(problem) {
  if (problem.status === 403) {
    return `This token is not a read token: ${problem.message}`;
  }
  return 'The collector did not accept this token. Check it and enter a read token (audit-collector token create --scope read, or the --read-token of the collector).';
}
