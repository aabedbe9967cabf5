"""The floor: a bare aiohttp client posting one chat completion per datum of an addition dataset.

    python bench/bare_client.py URL DATASET CONCURRENCY     # prints the request phase in seconds
"""

from __future__ import annotations

import asyncio
import sys
import time


async def post_all(url: str, prompts: list[str], concurrency: int) -> float:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def one(p: str) -> None:
            async with sem:
                async with s.post(url + "/chat/completions",
                                  json={"model": "m", "messages": [{"role": "user", "content": p}]}) as r:
                    await r.json()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(p) for p in prompts))
        return time.perf_counter() - t0


def main() -> None:
    import datasets

    url, path, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rows = datasets.load_from_disk(path).to_list()
    prompts = [f"Please add the following numbers together: {r['input']}\n\nOutput the result only." for r in rows]
    print(f"{asyncio.run(post_all(url, prompts, concurrency)):.4f}")


if __name__ == "__main__":
    main()
