"""Writes examples/demo/app.log with the real loguru, as a small web app would.

    python3 -m pip install loguru && python3 examples/demo/make_log.py
"""
import pathlib
import sys

from loguru import logger

here = pathlib.Path(__file__).resolve().parent
log = here / "app.log"
log.unlink(missing_ok=True)
logger.remove()
logger.add(log, diagnose=True, backtrace=True)
logger.level("AUDIT", no=25)


def charge(order_id, amount_cents):
    rate = {"EUR": 1.0}
    return amount_cents * rate["USD"]


for i in range(3):
    logger.info("GET /orders/{} 200 in {}ms", 1000 + i, 12 + i)
logger.log("AUDIT", "user 42 exported orders")
logger.warning("Slow query on orders took 1532 ms (limit 500 ms)")
for order in (5551, 5552):
    try:
        charge(order, 1999)
    except Exception:
        logger.exception("Payment failed for order {}", order)
logger.info("GET /health 200 in 1ms")
logger.warning("Slow query on orders took 2210 ms (limit 500 ms)")
print(f"wrote {log}", file=sys.stderr)
