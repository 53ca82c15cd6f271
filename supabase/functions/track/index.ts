/**
 * The `track` edge function: `POST /functions/v1/track` stores interaction
 * events. The work is done by {@link handler}; this file only serves it.
 *
 * @module
 */
import { handler } from "./handler.ts";

Deno.serve(handler);
