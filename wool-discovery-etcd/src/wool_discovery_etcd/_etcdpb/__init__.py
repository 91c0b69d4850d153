"""etcd v3 API messages, generated from ``protos/etcd_v3.proto`` (do not edit)."""
