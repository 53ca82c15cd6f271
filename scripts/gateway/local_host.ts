/**
 * Whether a request was addressed to this machine by one of its loopback
 * names. The gateway and its function processes listen on 127.0.0.1 only,
 * but a web page elsewhere whose name was rebound to 127.0.0.1 (DNS
 * rebinding) reaches them through the visitor's browser, sending its own
 * name as the Host: such requests are refused.
 *
 * @example
 * ```ts
 * import { isLoopbackHost } from "./local_host.ts";
 *
 * isLoopbackHost("127.0.0.1:54321"); // true
 * isLoopbackHost("localhost."); // true: a name may end with the root's dot
 * isLoopbackHost("evil.example:54321"); // false
 * ```
 *
 * @module
 */

const loopbackNames = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * Whether the Host header `host` names this machine's loopback, on any port
 * (a local proxy in front keeps the port its clients used). No Host at all
 * (HTTP/1.0) passes: a browser always sends one, so no page is behind it.
 */
export function isLoopbackHost(host: string | null): boolean {
  if (host === null) return true;
  const name = host.toLowerCase().replace(/:\d+$/, "").replace(/\.$/, "");
  return loopbackNames.has(name);
}
