// Keystone's error body: {"error": {"code", "title", "message"}}, the title being the HTTP
// reason phrase. Messages are Keystone's own (keystone/exception.py), so clients that match
// on them (keystoneauth's exception mapping reads only the status) see what they expect.

export class KeystoneError extends Error {
  constructor(
    readonly code: number,
    readonly title: string,
    message: string,
  ) {
    super(message);
  }

  body(): { error: { code: number; title: string; message: string } } {
    return { error: { code: this.code, title: this.title, message: this.message } };
  }
}

const badRequest = (message: string) => new KeystoneError(400, 'Bad Request', message);
const notFound = (message: string) => new KeystoneError(404, 'Not Found', message);

export const IdentityFaults = {
  validation: (message: string) => badRequest(`${message}`),
  /** Keystone never says which of user, password or scope was wrong. */
  unauthorized: () => new KeystoneError(401, 'Unauthorized', 'The request you have made requires authentication.'),
  forbidden: (action: string) =>
    new KeystoneError(403, 'Forbidden', `You are not authorized to perform the requested action: ${action}.`),
  tokenNotFound: (token: string) => notFound(`Could not find token: ${token}.`),
  projectNotFound: (id: string) => notFound(`Could not find project: ${id}.`),
  userNotFound: (id: string) => notFound(`Could not find user: ${id}.`),
  roleNotFound: (id: string) => notFound(`Could not find role: ${id}.`),
  domainNotFound: (id: string) => notFound(`Could not find domain: ${id}.`),
  regionNotFound: (id: string) => notFound(`Could not find region: ${id}.`),
  serviceNotFound: (id: string) => notFound(`Could not find service: ${id}.`),
  endpointNotFound: (id: string) => notFound(`Could not find endpoint: ${id}.`),
  notFound: () => notFound('The resource could not be found.'),
  methodNotAllowed: () => new KeystoneError(405, 'Method Not Allowed', 'The method is not allowed for the requested URL.'),
  internal: () =>
    new KeystoneError(500, 'Internal Server Error', 'An unexpected error prevented the server from fulfilling your request.'),
} as const;
