"""Start the crash_flow run: `crash_child.py URL TENANT THREAD WORKDIR [block]`.

With "block" the run hangs in the right task after its side effect, until the parent
kills the process; without it, the run is the undisturbed reference.
"""

from crash_flow import main

if __name__ == "__main__":
    main(resume=False)
