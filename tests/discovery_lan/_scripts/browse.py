"""A plain zeroconf browser, as any mDNS client would run it: no wool imported.

Usage: python -m tests.discovery_lan._scripts.browse INTERFACE SERVICE_TYPE COUNT TIMEOUT
Prints, as one JSON line, the first COUNT services it resolves (name, server, port,
addresses, TXT properties), or exits with status 1 when TIMEOUT seconds pass first.
"""

from __future__ import annotations

import json
import sys
import threading

from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf


class Collector(ServiceListener):
    def __init__(self, count: int) -> None:
        self.count = count
        self.names: set[str] = set()
        self.found = threading.Event()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)
        if len(self.names) >= self.count:
            self.found.set()

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.discard(name)


def main(interface: str, service_type: str, count: int, timeout: float) -> int:
    assert "wool" not in sys.modules
    zc = Zeroconf(interfaces=[interface], ip_version=IPVersion.V4Only)
    try:
        collector = Collector(count)
        browser = ServiceBrowser(zc, service_type, collector)
        try:
            if not collector.found.wait(timeout):
                return 1
            services = []
            for name in sorted(collector.names):
                info = zc.get_service_info(service_type, name, timeout=int(timeout * 1000))
                if info is None:
                    return 1
                services.append(
                    {
                        "name": info.name,
                        "server": info.server,
                        "port": info.port,
                        "addresses": info.parsed_addresses(),
                        "properties": {
                            k.decode(): None if v is None else v.decode()
                            for k, v in info.properties.items()
                        },
                    }
                )
        finally:
            browser.cancel()
        print(json.dumps(services), flush=True)
        return 0 if "wool" not in sys.modules else 2
    finally:
        zc.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
