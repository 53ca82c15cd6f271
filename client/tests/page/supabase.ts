/**
 * The test page's supabase-js: the app's own client, bundled for the browser
 * apart from the tracker, as an app would load it.
 *
 * @module
 */
export { createClient } from "@supabase/supabase-js";
