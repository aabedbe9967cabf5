"""An example agent: asks the model, writes the answer to result.txt in its working folder, and returns it.

`env.task` is the task text, `env.completion(messages)` calls the model under test through nearai's inference
layer (the agent process never sees an API key), `env.path` is the agent's private working folder.
"""


def run(env):
    reply = env.completion([
        {"role": "system", "content": "You are a careful calculator. Reply with the number only."},
        {"role": "user", "content": env.task},
    ])
    answer = reply.strip()
    env.write_file("result.txt", answer)
    return answer
