"""Resume a killed crash_flow run in a new process: `crash_resume.py URL TENANT THREAD WORKDIR`.

The tools no longer block; the run continues from the thread's last checkpoint.
"""

from crash_flow import main

if __name__ == "__main__":
    main(resume=True)
