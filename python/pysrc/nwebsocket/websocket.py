"""The :class:`WebSocket` class: the nwebsocket 1.0 API, backed by the Rust core."""

import inspect
import threading
import weakref

from ._nwebsocket import Connection
from ._redact import redact_url

__all__ = ["WebSocket"]

_CALLBACKS = ("onopen", "onmessage", "onerror", "onclose")

# The PEP 8 name of each callback: the same attribute under a second name.
_PEP8_NAMES = {
    "on_open": "onopen",
    "on_message": "onmessage",
    "on_error": "onerror",
    "on_close": "onclose",
}


class _Alias:
    """A second name for an attribute: reading, assigning and deleting go to ``target``."""

    def __init__(self, target):
        self.target = target

    def __set_name__(self, owner, name):
        self.__doc__ = "The same as ``{}``.".format(self.target)

    def __get__(self, instance, owner=None):
        if instance is None:
            return getattr(owner, self.target)
        return getattr(instance, self.target)

    def __set__(self, instance, value):
        setattr(instance, self.target, value)

    def __delete__(self, instance):
        delattr(instance, self.target)

# The core's default largest inbound message.
_DEFAULT_MAX_PAYLOAD = 64 << 20

# WebSockets whose dispatcher thread runs; closed at interpreter exit (see _close_all).
_dispatched = weakref.WeakSet()


class WebSocket:
    """A WebSocket client, as ``new WebSocket(url)`` in a browser, without async.

    The constructor returns at once; a background I/O thread (native, it never takes the GIL)
    connects and queues the events. Take them either

    - with callbacks, the 1.0 way: assign ``onopen``, ``onmessage``, ``onerror`` and
      ``onclose`` on the instance, or override them in a subclass. They run on one dispatcher
      thread of this connection, named ``nwebsocket-dispatch``, started when the first
      callback is set (or at construction when the class overrides one), and they are looked
      up each time an event fires. ``onopen()``; ``onmessage(data)``, ``str`` for text,
      ``bytes`` for binary; ``onerror(error)`` when the connection failed, with the exception
      that says why (a :class:`~nwebsocket.WebSocketError`); ``onclose(event)`` once per
      connection, last, with the :class:`Close` event. ``onerror`` and ``onclose`` may take no
      argument. Each is ``None`` until set, as in JS, and has a PEP 8 name too
      (``on_message``...); or
    - without callbacks, by polling: ``recv(timeout)``, ``try_recv()``, ``for event in ws``.
      No dispatcher thread is started then.

    :param url: ``ws://`` or ``wss://`` URL.
    :param options: a dict, see the README; ``{"maxPayload": n}`` as in 1.0. A ``str`` or a
        list is taken as the subprotocols to offer, as in JS.
    :param io_threads: an :class:`~nwebsocket.IoThreads` whose shared threads do this
        connection's I/O instead of a thread of its own (for hundreds or thousands of
        connections); the same as the ``io_threads`` option.
    """

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3

    def __init_subclass__(cls, **kwargs):
        # A subclass may override a callback by either name: the JS one is the one called.
        super().__init_subclass__(**kwargs)
        for pep8, js in _PEP8_NAMES.items():
            if pep8 not in cls.__dict__:
                continue
            if js in cls.__dict__:
                raise TypeError(
                    "{} defines both {} and {}: they are one attribute".format(cls.__name__, js, pep8)
                )
            setattr(cls, js, cls.__dict__[pep8])
            setattr(cls, pep8, _Alias(js))

    def __init__(self, url, options=None, *, io_threads=None):
        if isinstance(options, (str, list, tuple)):
            options = {"subprotocols": options}
        # The URL as given, secrets included, as the core's `Client::url` and JS keep it;
        # repr() and str() show it redacted.
        self.url = url
        # As in 1.0, `options` shows maxPayload when none were given (here: the core's limit).
        self.options = options if options is not None else {"maxPayload": _DEFAULT_MAX_PAYLOAD}
        self._dispatcher = None
        self._conn = Connection(url, self.options, io_threads)
        # The calls made once per message go straight to the native methods, which take the
        # same arguments: the Python method around each one was most of their cost (recv() on
        # a queued message: 606 ns with it, 346 ns without, CPython 3.12). Not where a
        # subclass overrides one, or it was patched on the class before this instance was made.
        cls = type(self)
        for name, method in _DIRECT.items():
            if getattr(cls, name) is method:
                self.__dict__[name] = getattr(self._conn, name)
        if _overrides_a_callback(type(self)) or any(
            name in self.__dict__ for name in _CALLBACKS
        ):
            self._start_dispatcher()

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        if name in _CALLBACKS and "_conn" in self.__dict__:
            self._start_dispatcher()

    def _start_dispatcher(self):
        conn = self._conn
        if conn.has_dispatcher:
            return
        if _exiting:
            raise RuntimeError("cannot start a dispatcher thread at interpreter shutdown")
        thread = _DispatcherThread(conn)
        if conn.start_dispatcher(self, thread):
            object.__setattr__(self, "_dispatcher", thread)
            _dispatched.add(self)

    # The JS attributes.

    @property
    def readyState(self):
        """0 ``CONNECTING``, 1 ``OPEN``, 2 ``CLOSING``, 3 ``CLOSED``.

        With callbacks it changes just before the matching callback runs (OPEN before
        ``onopen``, CLOSED before ``onclose``); without, as soon as the event has arrived.
        With ``reconnect``, a ``Close`` that another attempt follows turns it back to
        CONNECTING (the backoff), and the next ``Open`` to OPEN.
        """
        return self._conn.ready_state

    @property
    def bufferedAmount(self):
        """Bytes accepted by ``send()`` and not yet written to the socket."""
        return self._conn.buffered_amount

    @property
    def protocol(self):
        """The subprotocol the server chose, or ``""``."""
        return self._conn.protocol

    @property
    def extensions(self):
        """The extensions the server agreed to, as it named them (e.g.
        ``"permessage-deflate; server_max_window_bits=12"``), or ``""``: known from the
        ``Open`` on (the ``deflate`` option turns the offer off)."""
        return self._conn.extensions

    # Sending and closing.

    def send(self, data):
        """Sends ``str`` as text, ``bytes``, ``bytearray`` or ``memoryview`` as binary.

        Never blocks. Raises :class:`~nwebsocket.InvalidStateError` (a ``ConnectionError``)
        before the connection is open and after it started closing. With the ``reconnect`` or
        ``offline_sends`` options, a send while no connection is open (connecting, or waiting
        to reconnect) is queued and goes out, in order, right after the next ``Open``
        (:class:`~nwebsocket.QueueFullError` past ``offline_queue_bytes``), or, with
        ``offline_sends: "fail"``, raises ``InvalidStateError``.
        """
        self._conn.send(data)

    def ping(self, payload=b""):
        """Sends a ping (up to 125 bytes); the server's pong is not an event."""
        self._conn.ping(payload)

    def close(self, code=1000, reason=""):
        """Closes with ``code`` (1000, or 3000-4999) and ``reason`` (up to 123 bytes).

        Validated as in JS: :class:`~nwebsocket.InvalidAccessError` for a bad code,
        :class:`~nwebsocket.DOMSyntaxError` for a long reason. Then, as in 1.0, waits until the
        connection is closed: with callbacks until ``onclose`` has returned. Called from a
        callback it returns at once. Ctrl-C interrupts the wait; closing again does nothing.
        """
        self._conn.close(code, reason)

    def wait_closed(self, timeout=None):
        """Waits up to ``timeout`` seconds until the connection is over (with ``reconnect``:
        the last one) and ``onclose`` has returned; returns whether it is. Does not close. From inside a callback it returns
        ``False`` at once (``onclose`` cannot run before the callback returns)."""
        return self._conn.wait_closed(timeout)

    # Polling, without callbacks.

    def recv(self, timeout=None):
        """The next event (:class:`Open`, :class:`Message`, :class:`Error` or :class:`Close`),
        waiting up to ``timeout`` seconds (for ever if ``None``).

        Raises ``TimeoutError`` if none came in time, :class:`~nwebsocket.StreamEndedError`
        after the last ``Close`` (with ``reconnect``, a ``Close`` whose ``reconnect`` is not
        ``None`` is followed by the next attempt's events), ``RuntimeError`` if the WebSocket
        has callbacks.
        """
        return self._conn.recv(timeout)

    def try_recv(self):
        """The next event if one has arrived, else ``None``; never blocks."""
        return self._conn.try_recv()

    def events(self):
        """A blocking iterator over the events; it ends after the last ``Close``."""
        return iter(self._conn.next_event, None)

    def __iter__(self):
        return self.events()

    # Callbacks: None (as in JS) until assigned on the instance or overridden in a subclass.
    # onopen(), onmessage(data), onerror(error) or onerror(), onclose(event) or onclose().

    onopen = None
    onmessage = None
    onerror = None
    onclose = None

    # The PEP 8 names: the same attributes as the JS ones above (ws.on_message = f is
    # ws.onmessage = f).

    ready_state = readyState
    buffered_amount = bufferedAmount
    on_open = _Alias("onopen")
    on_message = _Alias("onmessage")
    on_error = _Alias("onerror")
    on_close = _Alias("onclose")

    # Context manager and display.

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __str__(self):
        # The URL without its password and query values (``url`` itself keeps them).
        return "<WebSocket url={} readyState={}>".format(redact_url(self.url), self.readyState)

    __repr__ = __str__


# The methods an instance replaces with its Connection's own (see WebSocket.__init__).
_DIRECT = {name: getattr(WebSocket, name) for name in ("send", "recv", "try_recv")}


def _overrides_a_callback(cls):
    return any(getattr(cls, name) is not getattr(WebSocket, name) for name in _CALLBACKS)


def _accepts_one_argument(callback):
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return True  # a builtin such as print: give it the event
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL,):
            return True
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            return True
    return False


def _call_with_event(callback, event):
    """Calls ``onerror``/``onclose`` with the event if its signature takes one, else bare."""
    if _accepts_one_argument(callback):
        callback(event)
    else:
        callback()


class _DispatcherThread:
    """The dispatcher thread of one WebSocket, as ``threading`` knows it.

    A native thread (see ``src/dispatch.rs``), attached to the interpreter from its start to
    its end: ``_begin`` runs first on it, and gives it its name in ``threading``
    (``threading.current_thread().name`` in a callback, ``threading.enumerate()``, logging's
    ``threadName``); ``_end`` runs last, and removes it from ``threading``'s table of threads,
    which Python before 3.13 would keep for ever. ``is_alive()`` and ``join()`` work as on a
    ``threading.Thread``.
    """

    name = "nwebsocket-dispatch"
    daemon = False

    def __init__(self, conn):
        self._conn = conn
        self._thread = None
        self.ident = None
        self.native_id = None

    def is_alive(self):
        return self._conn.dispatcher_running

    def join(self, timeout=None):
        self._conn.join_dispatcher(timeout)

    def __repr__(self):
        state = "started" if self.is_alive() else "stopped"
        return "<_DispatcherThread({}, {} {})>".format(self.name, state, self.ident)

    # On the dispatcher thread.

    def _begin(self):
        thread = threading.current_thread()  # made for this thread now, a "dummy" one
        thread.name = self.name
        self._thread = thread
        self.ident = thread.ident
        self.native_id = getattr(thread, "native_id", None)

    def _end(self):
        thread, self._thread = self._thread, None
        active = getattr(threading, "_active", None)
        lock = getattr(threading, "_active_limbo_lock", None)
        if thread is None or active is None or lock is None:
            return
        with lock:
            if active.get(self.ident) is thread:
                del active[self.ident]

    _call = staticmethod(_call_with_event)


# Set at interpreter exit, once every dispatcher has ended: no other may start after that.
_exiting = False


def _close_all():
    """At interpreter exit, before non-daemon threads are joined: close every connection that
    has a dispatcher and wait for the dispatchers to end (after at most the close timeout and
    the callbacks), as Python waits for its own non-daemon threads."""
    global _exiting
    _exiting = True
    for ws in list(_dispatched):
        try:
            ws._conn.close_nowait()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    for ws in list(_dispatched):
        try:
            ws._conn.join_dispatcher()
        except BaseException:  # noqa: BLE001 - Ctrl-C at exit: exit anyway
            break


try:
    threading._register_atexit(_close_all)
except AttributeError:  # pragma: no cover - every supported Python has it
    pass
