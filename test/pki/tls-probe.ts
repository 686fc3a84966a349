/** Real TLS on 127.0.0.1: what a server configured as fussyd's says to a client certificate. */
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

export interface ServerTls {
  key: Buffer;
  cert: Buffer;
  /** The client CA alone (never the system store). */
  ca: Buffer;
  crl?: Buffer;
}

export interface ClientTls {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** The name the client checks the server's certificate against; default localhost. undefined: the IP address. */
  servername?: string | undefined;
}

export interface Outcome {
  /** The server's handler ran and the client got its answer (the client's CN). */
  accepted: boolean;
  answer?: string;
  /** The client's error, when it refused the server or the connection failed. */
  clientError?: string;
}

/** A server as fussyd's (requestCert, rejectUnauthorized, ca, crl); its handler answers with the client's CN. */
async function serve<T>(s: ServerTls, reject: boolean, fn: (port: number) => Promise<T>, onSecure: (sock: tls.TLSSocket) => void): Promise<T> {
  const server = tls.createServer({ key: s.key, cert: s.cert, ca: s.ca, ...(s.crl === undefined ? {} : { crl: s.crl }), requestCert: true, rejectUnauthorized: reject, minVersion: 'TLSv1.2' }, onSecure);
  server.on('tlsClientError', () => {}); // a refusal is the outcome under test, seen from the client
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await fn((server.address() as AddressInfo).port);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

function connect(port: number, c: ClientTls): Promise<Outcome> {
  return new Promise((resolve) => {
    const servername = 'servername' in c ? c.servername : 'localhost';
    const sock = tls.connect({ host: '127.0.0.1', port, ca: c.ca, ...(servername === undefined ? {} : { servername }), ...(c.cert === undefined ? {} : { cert: c.cert, key: c.key }) });
    let answer = '';
    let clientError: string | undefined;
    sock.on('data', (b: Buffer) => (answer += b.toString()));
    sock.on('error', (err: NodeJS.ErrnoException) => (clientError = err.code ?? err.message));
    sock.on('close', () => resolve({ accepted: answer !== '', ...(answer === '' ? {} : { answer }), ...(clientError === undefined ? {} : { clientError }) }));
  });
}

/** One handshake against a server that refuses what it cannot verify (fussyd's settings). */
export function handshake(s: ServerTls, c: ClientTls): Promise<Outcome> {
  return serve(s, true, (port) => connect(port, c), (sock) => sock.end(String(sock.getPeerCertificate().subject?.CN)));
}

/** Why a server that refuses would refuse this client: OpenSSL's verify error (CERT_REVOKED, ...), or 'ok'. */
export function verifyError(s: ServerTls, c: ClientTls): Promise<string> {
  return serve(s, false, async (port) => (await connect(port, c)).answer ?? 'no answer', (sock) => sock.end(sock.authorizationError === undefined ? 'ok' : String(sock.authorizationError)));
}
