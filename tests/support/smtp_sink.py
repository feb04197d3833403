#!/usr/bin/env python3
"""A real SMTP server for hookrelay's e-mail tests.

    smtp_sink.py OUTDIR [REPLY ...]

Listens on 127.0.0.1 on a free port and prints the port on its first line
of output. Each accepted message is written to OUTDIR as N.eml (the DATA
as received) and N.json (the envelope: mail_from, rcpt_tos). REPLY
arguments answer the first messages in order instead of 250: for example
"451 4.3.0 Try again later" or "550 5.1.1 No such user". A reply of "250"
accepts the message.

Uses aiosmtpd when it is installed (Debian: python3-aiosmtpd), else the
standard library's smtpd (Python <= 3.11).
"""

import json
import os
import sys
import warnings


class Mailbox:
    """What both server flavours share: scripted replies and the files."""

    def __init__(self, outdir, replies):
        self.outdir = outdir
        self.replies = list(replies)
        self.count = 0

    def take(self, mail_from, rcpt_tos, data):
        """Returns the reply to give, or None to accept (and keep) it."""
        if self.replies:
            reply = self.replies.pop(0)
            if not reply.startswith("250"):
                return reply
        self.count += 1
        base = os.path.join(self.outdir, str(self.count))
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": mail_from, "rcpt_tos": list(rcpt_tos)}, f)
        with open(base + ".eml", "wb") as f:
            f.write(data)
        # The envelope appears last: a reader that sees it sees the message.
        os.rename(base + ".json.tmp", base + ".json")
        return None


def serve_aiosmtpd(mailbox):
    import asyncio
    import socket

    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            reply = mailbox.take(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
            return reply or "250 OK"

    async def main():
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        srv = await loop.create_server(
            lambda: SMTP(Handler(), decode_data=False, hostname="sink.test"), sock=sock
        )
        print(sock.getsockname()[1], flush=True)
        await srv.serve_forever()

    asyncio.run(main())


def serve_smtpd(mailbox):
    warnings.simplefilter("ignore", DeprecationWarning)
    import asyncore
    import smtpd

    class Sink(smtpd.SMTPServer):
        def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
            return mailbox.take(mailfrom, rcpttos, data)

    server = Sink(("127.0.0.1", 0), None, decode_data=False)
    print(server.socket.getsockname()[1], flush=True)
    asyncore.loop(timeout=0.05)


def main():
    mailbox = Mailbox(sys.argv[1], sys.argv[2:])
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import smtpd  # noqa: F401
        except ImportError:
            sys.stderr.write(
                "smtp_sink.py needs aiosmtpd (apt install python3-aiosmtpd) or Python <= 3.11\n"
            )
            sys.exit(3)
        serve_smtpd(mailbox)
        return
    serve_aiosmtpd(mailbox)


if __name__ == "__main__":
    main()
