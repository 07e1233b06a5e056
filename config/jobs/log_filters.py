"""Keep job arguments out of the logs.

Procrastinate's worker logs each job as `task[id](arguments)`: for `send_email` that is the
whole message (addresses, signature codes, PDFs in base64). The logs keep the task and its id;
the arguments stay in the database, visible to staff in the admin.
"""

import logging
import re

# `name[42](…)` up to the last `)` before « ended with status » or the end of the message.
_CALL = re.compile(r"(\[\d+\])\(.*\)(?= ended with status|$)", re.DOTALL)


class HideJobArguments(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("procrastinate"):
            message = record.getMessage()
            hidden = _CALL.sub(r"\1(…)", message)
            if hidden != message:
                record.msg, record.args = hidden, ()
        return True
