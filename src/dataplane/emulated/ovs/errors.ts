// Errors that quote the flow text and name the offending token, so an agent's bad flow is
// found from the message alone.

export class OvsFlowError extends Error {
  constructor(
    readonly flow: string,
    readonly token: string,
    readonly reason: string,
  ) {
    super(`Invalid flow "${flow}": ${reason} ('${token}')`);
    this.name = 'OvsFlowError';
  }
}

/** Thrown for port operations (unknown port, ofport already in use...). */
export class OvsPortError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OvsPortError';
  }
}
