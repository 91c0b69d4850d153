"""etcd v3 API messages, generated from protos/wool_discovery_etcd/v3/etcd.proto
(``nox -s protos``; do not edit)."""
