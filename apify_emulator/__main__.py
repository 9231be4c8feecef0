"""`python -m apify_emulator --host 127.0.0.1 --port 8765 [--wait-cap 2.0] [--token TOKEN ...]`."""
import argparse

from .server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m apify_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--wait-cap", type=float, default=2.0, help="longest waitForFinish hold, seconds")
    parser.add_argument("--token", action="append", dest="tokens",
                        help="a valid API token (repeatable); without any, every non-empty token is valid")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every API request")
    parser.add_argument("--run-duration", type=float, default=0.0, help="seconds a run stays RUNNING")
    parser.add_argument("--price-per-item", type=float, default=0.0007, help="USD per dataset item")
    args = parser.parse_args()
    serve(args.host, args.port, wait_cap_s=args.wait_cap, valid_tokens=args.tokens, latency_ms=args.latency_ms,
          run_duration_s=args.run_duration, price_per_item_usd=args.price_per_item)


if __name__ == "__main__":
    main()
