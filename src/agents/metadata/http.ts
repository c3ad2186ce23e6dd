// The HTTP exchange of the metadata path as plain values, so the same handlers serve an
// in-process call (the emulated proxy), a real UNIX socket (the linux dataplane) and tests.
// Header names are matched case-insensitively, as HTTP wants.

export interface HttpRequest {
  method: string;
  /** Path and query, e.g. `/latest/meta-data/instance-id`. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function header(req: { headers: Record<string, string> }, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(req.headers)) if (k.toLowerCase() === want) return v;
  return undefined;
}

export const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** A webob-like error page body: `<status> <reason>\n\n<explanation>`. */
export function errorResponse(status: number, explanation = ''): HttpResponse {
  const title = `${status} ${REASONS[status] ?? ''}`.trim();
  return { status, headers: { 'Content-Type': 'text/plain; charset=UTF-8' }, body: explanation ? `${title}\n\n${explanation}\n` : `${title}\n` };
}

export function textResponse(body: string, contentType = 'text/plain; charset=UTF-8'): HttpResponse {
  return { status: 200, headers: { 'Content-Type': contentType }, body };
}
