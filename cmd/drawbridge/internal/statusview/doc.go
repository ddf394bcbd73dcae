// Package statusview is the client side of 'drawbridge status': it fetches
// a gateway's /status.json and draws the terminal screen from it (a header,
// the problems, then a table of routes and one of targets). The command
// keeps its flags and its --watch loop.
package statusview
