// Package browsertest drives the todo app (examples/todo) in Debian's Chromium through a running stack's edge over
// HTTPS. It holds tests only, and they skip unless deploy/e2e.sh (or a person) points them at a stack:
//
//   - TestTodoApp (E2E_URL, E2E_CACERT, E2E_COMPOSE): adds, toggles and deletes a todo in the React front end, stops
//     the api with `$E2E_COMPOSE stop api` and waits for the page's banner, starts it again and waits for the page to
//     recover by itself.
//   - TestHotReload (also E2E_WEB_SRC, E2E_API_SRC: the copies of examples/todo/web and examples/todo/api that the
//     compose.dev.yaml stack mounts): changes a component's text and waits, without navigating, for the open page to
//     show it (esbuild's /esbuild event stream through the edge reloads it), then adds an API route and waits for the
//     page's fetch to reach it (gunicorn --reload).
//
// Chromium verifies nothing about the stack's internal CA by itself; the test verifies the edge's certificate
// against E2E_CACERT in Go and then pins exactly that certificate's public key in Chromium
// (--ignore-certificate-errors-spki-list), so the browser talks to the verified edge and nothing else.
package browsertest
