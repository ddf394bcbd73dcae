// Package discovery follows the DNS names among an upstream's targets: each
// name is re-resolved on a short interval and every address it returns
// becomes a target, so scaled Compose services and Swarm's tasks.<service>
// names just work.
//
// Go's resolvers do not expose record TTLs, so the interval is the only
// clock: it defaults to 5s, shorter than the TTL of Docker's embedded DNS
// (600s) and of most service registries, and nothing is cached in between.
// A failed lookup keeps the last good addresses of that name and is
// reported once, when the name starts failing, and again when it recovers.
package discovery
