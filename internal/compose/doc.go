// Package compose reads a Compose project the way `docker compose` does and
// drives its containers: it stops services in reverse dependency order,
// starts them again in dependency order honouring depends_on conditions, and
// waits until they are running and healthy. The Docker engine sits behind
// the narrow Engine interface so ordering, timeouts and failure handling are
// tested with a fake.
package compose
