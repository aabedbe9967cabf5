"""A HumanEval task as an AutoGenBench scenario: ask the model under test (through $OPENAI_BASE_URL, standard
library only), write the solution, run the task's tests, and print the pass marker when they pass."""

import json
import os
import re
import subprocess
import sys
import urllib.request

ENTRY_POINT = "__ENTRY_POINT__"
PROMPT = open("prompt.txt").read()
TEST = open("test.txt").read()

ask = ("Complete the following Python function. Reply with the full function in a ```python block.\n\n"
       f"```python\n{PROMPT}```")
request = urllib.request.Request(
    os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions",
    data=json.dumps({"model": "model-under-test", "messages": [{"role": "user", "content": ask}]}).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ.get("OPENAI_API_KEY", "")},
)
with urllib.request.urlopen(request, timeout=300) as response:
    reply = json.load(response)["choices"][0]["message"]["content"]
blocks = re.findall(r"```(?:python|py)?\s*\n(.*?)```", reply, re.S)
code = max(blocks, key=len) if blocks else reply
if not re.search(rf"^\s*def\s+{re.escape(ENTRY_POINT)}\s*\(", code, re.M):
    code = PROMPT + code
with open("solution.py", "w") as f:
    f.write(f"{code}\n\n{TEST}\n\ncheck({ENTRY_POINT})\n")
result = subprocess.run([sys.executable, "solution.py"], capture_output=True, text=True, timeout=60)
print(result.stdout + result.stderr)
if result.returncode == 0:
    print("ALL TESTS PASSED !#!#")
