/**
 * @file yoton.h
 * @brief libyoton, a C implementation of yoton, the messaging library of the Pyzo IDE.
 *
 * libyoton speaks the wire protocol of the Python reference (yoton 2.2, Pyzo 4.12.3) byte for
 * byte, so C and Python contexts share one network.
 *
 * CONVENTIONS
 *
 * - Every fallible call returns an int: YT_OK (0) on success or a negative YT_E* code. Results come
 *   back through out-parameters, which are left untouched on failure unless stated otherwise.
 *   yt_strerror() names a code; yt_last_error() gives the detail of the calling thread's most
 *   recent failure (which address, which errno).
 * - Handles are opaque. Whoever creates an object frees it with the matching *_free() call.
 *   "Borrowed" results stay owned by the object they came from and are valid until it changes or
 *   is freed. "Consumed" parameters change hands on the call, whatever it returns.
 * - Times are given in seconds as doubles. For timeouts, a negative value means "wait forever"
 *   and 0 means "do not wait". All waits use CLOCK_MONOTONIC, so changing the wall clock never
 *   shortens or lengthens one.
 *
 * THREADS
 *
 * - Functions that work on plain data (yt_value_*, yt_strerror, yt_version*) are safe from any
 *   thread as long as two threads do not change the same object at once; reading one value from
 *   several threads is fine.
 * - Event loops, signals and timers may be used from any thread; handlers and timer callbacks run
 *   on the thread that calls yt_loop_process() / yt_loop_run() for their loop, never on a
 *   library IO thread.
 * - A call that blocks says so and always has a timeout or a way to be woken (closing the object
 *   it waits on wakes it with YT_ECLOSED).
 */
/**
 * @mainpage libyoton API reference
 *
 * libyoton is a C11 implementation of yoton, the messaging library of the Pyzo IDE, speaking
 * the wire protocol of the Python reference byte for byte. Everything is declared in one
 * header, yoton.h: its page lists every function, type and macro with its documented
 * behaviour, and its description gives the conventions (return codes, ownership, time-outs)
 * and the threading rules.
 *
 * The user guide (docs/guide.md in the source tree) walks through contexts, connections,
 * channels, message types, the event loop, client/server, tuning and error handling;
 * docs/interop.md, docs/message-types.md and docs/tool.md cover talking to Python programs,
 * message types and the yoton command-line tool.
 */
#ifndef YOTON_H
#define YOTON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Version and export
 * ------------------------------------------------------------------------------------------- */

/** Major version of this header; changes break the API or ABI (it is the SONAME). */
#define YT_VERSION_MAJOR 0
/** Minor version of this header: additions. */
#define YT_VERSION_MINOR 1
/** Patch version of this header: fixes. */
#define YT_VERSION_PATCH 0
/** The version as one comparable number: major * 10000 + minor * 100 + patch. */
#define YT_VERSION_NUMBER (YT_VERSION_MAJOR * 10000 + YT_VERSION_MINOR * 100 + YT_VERSION_PATCH)

#if defined(YT_BUILDING) && (defined(__GNUC__) || defined(__clang__))
#define YT_API __attribute__((visibility("default")))
#else
/** Marks the public functions: exported from the shared library while it is built (every
 *  other symbol is hidden); empty in programs that use the library. */
#define YT_API
#endif

/** The version of the library actually linked, "MAJOR.MINOR.PATCH". Static storage; any thread. */
YT_API const char *yt_version_string(void);
/** The linked library's YT_VERSION_NUMBER. Any thread. */
YT_API int yt_version(void);

/* ---------------------------------------------------------------------------------------------
 * Errors
 *
 * Codes and their messages come from this one list, so they cannot drift apart.
 * ------------------------------------------------------------------------------------------- */

/** The error codes, one X(NAME, code, message) entry each: the constant YT_NAME has the value
 *  code, and yt_strerror() returns message for it. Expand it with your own X to map the codes
 *  (for example to a table of names). */
#define YT_ERROR_LIST(X)                                                                         \
    X(OK, 0, "Success")                                                                          \
    X(EINVAL, -1, "Invalid argument")                                                            \
    X(ENOMEM, -2, "Out of memory")                                                               \
    X(ETIMEDOUT, -3, "Timed out")                                                                \
    X(ECLOSED, -4, "Object is closed")                                                           \
    X(EAGAIN, -5, "Nothing available now")                                                       \
    X(EADDR, -6, "Invalid address")                                                              \
    X(ECONNECT, -7, "Could not connect")                                                         \
    X(EBIND, -8, "Could not bind")                                                               \
    X(EHANDSHAKE, -9, "Handshake failed")                                                        \
    X(EPROTO, -10, "Protocol error")                                                             \
    X(EDECODE, -11, "Malformed encoded data")                                                    \
    X(EENCODE, -12, "Value cannot be encoded")                                                   \
    X(ETOOBIG, -13, "Message too large")                                                         \
    X(EFULL, -14, "Queue is full")                                                               \
    X(EBUSY, -15, "Resource is busy")                                                            \
    X(ENOTFOUND, -16, "Not found")                                                               \
    X(ECANCELED, -17, "Cancelled")                                                               \
    X(EREMOTE, -18, "The remote side reported an error")                                         \
    X(ECONNLOST, -19, "Connection lost")                                                         \
    X(ENOTSUP, -20, "Not supported")                                                             \
    X(ESTATE, -21, "Not possible in the current state")                                          \
    X(ESYS, -22, "System error")

/**
 * The error codes: YT_OK (0) and the negative YT_E* values, generated from YT_ERROR_LIST.
 *
 * | code | value | message |
 * | --- | --- | --- |
 * | YT_OK | 0 | Success |
 * | YT_EINVAL | -1 | Invalid argument |
 * | YT_ENOMEM | -2 | Out of memory |
 * | YT_ETIMEDOUT | -3 | Timed out |
 * | YT_ECLOSED | -4 | Object is closed |
 * | YT_EAGAIN | -5 | Nothing available now |
 * | YT_EADDR | -6 | Invalid address |
 * | YT_ECONNECT | -7 | Could not connect |
 * | YT_EBIND | -8 | Could not bind |
 * | YT_EHANDSHAKE | -9 | Handshake failed |
 * | YT_EPROTO | -10 | Protocol error |
 * | YT_EDECODE | -11 | Malformed encoded data |
 * | YT_EENCODE | -12 | Value cannot be encoded |
 * | YT_ETOOBIG | -13 | Message too large |
 * | YT_EFULL | -14 | Queue is full |
 * | YT_EBUSY | -15 | Resource is busy |
 * | YT_ENOTFOUND | -16 | Not found |
 * | YT_ECANCELED | -17 | Cancelled |
 * | YT_EREMOTE | -18 | The remote side reported an error |
 * | YT_ECONNLOST | -19 | Connection lost |
 * | YT_ENOTSUP | -20 | Not supported |
 * | YT_ESTATE | -21 | Not possible in the current state |
 * | YT_ESYS | -22 | System error |
 */
enum yt_error {
#define YT_ERROR_ENUM_(name, code, text) YT_##name = (code),
    YT_ERROR_LIST(YT_ERROR_ENUM_)
#undef YT_ERROR_ENUM_
};

/** The message of an error code ("Unknown error" for anything else). Static storage; any thread. */
YT_API const char *yt_strerror(int code);

/**
 * The detail of the calling thread's most recent failed call, for example
 * "Cannot connect to 127.0.0.1 on 5555: Connection refused". Never NULL; "" when there is none.
 * Thread-local: valid until the calling thread's next failing yoton call.
 */
YT_API const char *yt_last_error(void);

/** Frees memory that a yoton call handed to the caller as "free with yt_free" (NULL is fine). */
YT_API void yt_free(void *ptr);

/** What a full bounded queue does with one more message. */
typedef enum yt_discard_mode {
    YT_DISCARD_OLD = 0, /**< drop the oldest queued message (the reference's "old") */
    YT_DISCARD_NEW = 1  /**< drop the message that did not fit (the reference's "new") */
} yt_discard_mode;

/* ---------------------------------------------------------------------------------------------
 * Values: the object model of OBJECT messages
 *
 * A yt_value is a tree: None, bool, 64-bit int, double, UTF-8 string, list, tuple, or dict (any
 * value as key except lists and dicts, kept in insertion order). Containers own their items.
 * Lists and tuples are distinct types (the wire keeps them apart).
 *
 * Constructors return a new value owned by the caller, or NULL on failure (out of memory, or
 * invalid UTF-8 for strings; see yt_last_error()). Functions that put a value into a container
 * consume it, also on failure and also when it is NULL, so calls nest:
 *     yt_value_append(list, yt_value_int(3));
 * Values must not be put into two containers, nor into themselves.
 * ------------------------------------------------------------------------------------------- */

/** A value of the OBJECT format (opaque): None, bool, int, float, str, list, tuple or dict. */
typedef struct yt_value yt_value;

/** The type of a yt_value, named after the Python type it maps to. */
typedef enum yt_value_type {
    YT_NONE = 0, /**< None */
    YT_BOOL,     /**< bool */
    YT_INT,      /**< int, 64-bit signed */
    YT_FLOAT,    /**< float, a double */
    YT_STRING,   /**< str, UTF-8 */
    YT_LIST,     /**< list */
    YT_TUPLE,    /**< tuple */
    YT_DICT      /**< dict, in insertion order */
} yt_value_type;

/** Nesting deeper than this is refused by the decoder and the encoder (the reference fails
 *  around 1000 levels, at Python's recursion limit). */
#define YT_VALUE_MAX_DEPTH 500

/** A new None, or NULL when out of memory. */
YT_API yt_value *yt_value_none(void);
/** A new bool, or NULL when out of memory. */
YT_API yt_value *yt_value_bool(bool b);
/** A new int, or NULL when out of memory. */
YT_API yt_value *yt_value_int(int64_t i);
/** A new float, or NULL when out of memory. */
YT_API yt_value *yt_value_float(double d);
/** A string from NUL-terminated UTF-8; NULL (YT_EINVAL) if s is NULL or not valid UTF-8. */
YT_API yt_value *yt_value_string(const char *s);
/** A string from len bytes of UTF-8 (may contain NUL bytes); NULL if invalid. (NULL, 0) gives
 *  the empty string. */
YT_API yt_value *yt_value_stringn(const char *s, size_t len);
/** A new empty list, or NULL when out of memory. */
YT_API yt_value *yt_value_list(void);
/** A new empty tuple (filled with yt_value_append), or NULL when out of memory. */
YT_API yt_value *yt_value_tuple(void);
/** A new empty dict, or NULL when out of memory. */
YT_API yt_value *yt_value_dict(void);

/** Frees a value and everything in it. NULL is fine. */
YT_API void yt_value_free(yt_value *v);
/** A deep copy owned by the caller, or NULL when out of memory. */
YT_API yt_value *yt_value_copy(const yt_value *v);
/** The type of v; YT_NONE for NULL. */
YT_API yt_value_type yt_value_type_of(const yt_value *v);

/** Read a scalar. YT_EINVAL when v has another type (no conversion, except that
 *  yt_value_as_float also reads ints). */
YT_API int yt_value_as_bool(const yt_value *v, bool *out);
/** Reads an int into *out. YT_EINVAL when v is not an int. */
YT_API int yt_value_as_int(const yt_value *v, int64_t *out);
/** Reads a float, or an int converted to double, into *out. YT_EINVAL for other types. */
YT_API int yt_value_as_float(const yt_value *v, double *out);
/** A string's bytes (borrowed, NUL-terminated; *len, if given, receives the byte length),
 *  or NULL when v is not a string. */
YT_API const char *yt_value_as_string(const yt_value *v, size_t *len);

/** Items of a list or tuple, pairs of a dict; 0 for other types. */
YT_API size_t yt_value_len(const yt_value *v);
/** Item i of a list or tuple (borrowed), NULL when out of range or not a sequence. */
YT_API const yt_value *yt_value_item(const yt_value *seq, size_t i);
/** Appends item (consumed) to a list or tuple. YT_EINVAL (wrong type, NULL item), YT_ENOMEM. */
YT_API int yt_value_append(yt_value *seq, yt_value *item);

/** Sets d[key] = val, both consumed. An existing equal key keeps its position and gets the new
 *  value (keys compare as in Python: 1, 1.0 and true are the same key). YT_EINVAL when d is not
 *  a dict, key or val is NULL, key is a list or dict (or contains one), or key nests deeper than
 *  YT_VALUE_MAX_DEPTH; YT_ENOMEM. */
YT_API int yt_value_dict_set(yt_value *d, yt_value *key, yt_value *val);
/** yt_value_dict_set with a string key copied from NUL-terminated UTF-8. */
YT_API int yt_value_dict_set_str(yt_value *d, const char *key, yt_value *val);
/** The value stored under key (borrowed) or NULL. */
YT_API const yt_value *yt_value_dict_get(const yt_value *d, const yt_value *key);
/** The value stored under the string key (borrowed) or NULL. */
YT_API const yt_value *yt_value_dict_get_str(const yt_value *d, const char *key);
/** Pair i of a dict in insertion order (borrowed). YT_EINVAL when out of range or not a dict. */
YT_API int yt_value_dict_entry(const yt_value *d, size_t i, const yt_value **key,
                               const yt_value **val);

/** Deep equality. Types must match exactly (a list never equals a tuple, 1 never equals 1.0);
 *  floats compare by value (so NaN is unequal to itself); dicts compare pair by pair in order.
 *  Also false if memory runs out while comparing values nested thousands deep. */
YT_API bool yt_value_equal(const yt_value *a, const yt_value *b);

/**
 * Encodes v in the OBJECT format of the reference. On success *out receives a buffer owned by
 * the caller (free with yt_free) and *len its size. YT_EENCODE when v nests deeper than
 * YT_VALUE_MAX_DEPTH; YT_ENOMEM.
 */
YT_API int yt_value_encode(const yt_value *v, void **out, size_t *len);

/**
 * Decodes one value from untrusted bytes, as the reference does: an empty input is None and
 * bytes after the value are ignored. On success *out receives a value owned by the caller.
 * YT_EDECODE on truncated input, unknown tags, invalid UTF-8, counts larger than the input
 * could hold, nesting deeper than YT_VALUE_MAX_DEPTH, or list/dict keys. Never reads outside
 * [data, data+len) and never allocates more than a small multiple of len.
 */
YT_API int yt_value_decode(const void *data, size_t len, yt_value **out);

/* ---------------------------------------------------------------------------------------------
 * Event system: loops, signals, timers
 *
 * A loop is a queue of events. Anything may post to it from any thread; the events run, in
 * order, on whichever thread calls yt_loop_process() or yt_loop_run(). Library IO threads never
 * run user code: connections and channels post their signals to a loop (the default loop unless
 * their options name another one).
 * ------------------------------------------------------------------------------------------- */

/** An event loop (opaque): a queue of events and timers, run by yt_loop_process(). */
typedef struct yt_loop yt_loop;
/** A signal (opaque): emitting it posts one event per bound handler to its loop. */
typedef struct yt_signal yt_signal;
/** A timer (opaque) that calls a function through its loop. */
typedef struct yt_timer yt_timer;

/** What a signal handler receives. Valid only during the call. */
typedef struct yt_event {
    yt_signal *signal; /**< the signal that fired */
    void *source;      /**< the object the signal belongs to (connection, channel, ...) */
    int flag;          /**< signal-specific: timedout gives 1 (timed out) or 0 (data again) */
    const char *text;  /**< signal-specific text or NULL: closed gives the reason */
} yt_event;

/** A signal handler: ev describes the emission, user is what was given to yt_signal_bind. */
typedef void (*yt_handler_fn)(const yt_event *ev, void *user);
/** A callback of yt_loop_call_later, a timer, or yt_loop_embed's notifier. */
typedef void (*yt_callback_fn)(void *user);

/** The process-wide default loop, created on first use, never freed. Any thread. */
YT_API yt_loop *yt_loop_default(void);

/** A new loop owned by the caller. YT_ENOMEM. */
YT_API int yt_loop_new(yt_loop **out);

/**
 * Frees a loop: events still queued are discarded (their handlers never run), timers on it stop
 * and yt_loop_run() or yt_loop_process() blocked on it in other threads return YT_ECLOSED before
 * this returns. Signals and timers created on it must be freed by their owners first or after;
 * they stay valid handles that do nothing. Never free the default loop.
 */
YT_API void yt_loop_free(yt_loop *loop);

/**
 * Runs the events queued when the call starts, and the timers that are due; if there were none,
 * waits up to timeout seconds (0: do not wait, negative: until something happens) for the first
 * event and runs it, with everything else queued by then. Returns the number of events and timer
 * callbacks run (>= 0), or YT_ECLOSED when the loop is freed while waiting. Events queued by a
 * handler during the call run in the next call. Any thread; two threads processing one loop at
 * once each run part of the events.
 */
YT_API int yt_loop_process(yt_loop *loop, double timeout);

/** Processes events until yt_loop_stop() is called (from a handler or any other thread).
 *  Returns YT_OK, or YT_ECLOSED when the loop is freed. */
YT_API int yt_loop_run(yt_loop *loop);

/** Makes yt_loop_run() return after the event it is running. Any thread. A stop requested
 *  while no yt_loop_run() is active makes the next one return at once; yt_loop_process() is
 *  not affected by stop requests. */
YT_API void yt_loop_stop(yt_loop *loop);

/**
 * Queues fn(user) to run in the loop after delay seconds. delay 0 queues it behind the events
 * already queued; a negative delay puts it at the front of the queue. YT_ENOMEM, YT_EINVAL
 * (fn NULL). If it fails, fn is never called.
 */
YT_API int yt_loop_call_later(yt_loop *loop, double delay, yt_callback_fn fn, void *user);

/**
 * Embeds the loop in another one: notify(user) is called, on whichever thread posts, each time
 * an event is queued or a timer is (re)started, so that the host loop (a GUI's, GLib's, an
 * application's own) can schedule a yt_loop_process(loop, 0) on its own thread. notify must be
 * quick and must not call back into the loop. NULL removes it. Any thread.
 */
YT_API void yt_loop_embed(yt_loop *loop, yt_callback_fn notify, void *user);

/** Seconds until the loop's next timer is due (0 if one is due or an event is queued; negative
 *  if there is nothing at all), for host loops that need a wake-up time. Any thread. */
YT_API double yt_loop_next_timeout(yt_loop *loop);

/**
 * A new signal posting to loop (NULL: the default loop); source is passed to handlers as
 * yt_event.source. Owned by the caller. When coalesce is true, yt_signal_emit() posts nothing
 * while an earlier emission still waits to be run, so a burst of emissions runs each handler
 * once. YT_ENOMEM.
 */
YT_API int yt_signal_new(yt_loop *loop, void *source, bool coalesce, yt_signal **out);
/** Frees a signal. Its events still queued are dropped; a handler running right now on another
 *  thread finishes first. NULL is fine. */
YT_API void yt_signal_free(yt_signal *sig);
/** Adds a handler. Binding the same (fn, user) twice is YT_EBUSY. YT_EINVAL, YT_ENOMEM. */
YT_API int yt_signal_bind(yt_signal *sig, yt_handler_fn fn, void *user);
/** Removes a handler; its events already queued are dropped. YT_ENOTFOUND if not bound. */
YT_API int yt_signal_unbind(yt_signal *sig, yt_handler_fn fn, void *user);
/** Number of handlers bound. */
YT_API size_t yt_signal_handler_count(yt_signal *sig);
/**
 * Posts one event per bound handler to the signal's loop, with flag and a copy of text (may be
 * NULL). Safe from any thread, including library IO threads. YT_ENOMEM. On a signal whose loop
 * was freed it does nothing and returns YT_OK.
 */
YT_API int yt_signal_emit(yt_signal *sig, int flag, const char *text);
/** Calls every handler now, on the calling thread, in binding order. */
YT_API int yt_signal_emit_now(yt_signal *sig, int flag, const char *text);

/**
 * A timer on loop (NULL: the default loop) that calls fn(user) interval seconds after it is
 * started, and again every interval unless oneshot. Created stopped; owned by the caller.
 * YT_EINVAL (fn NULL or interval negative), YT_ENOMEM.
 */
YT_API int yt_timer_new(yt_loop *loop, double interval, bool oneshot, yt_callback_fn fn,
                        void *user, yt_timer **out);
/** Starts (or restarts) the timer from now. YT_ECLOSED when its loop was freed. Any thread. */
YT_API int yt_timer_start(yt_timer *t);
/** Stops the timer; a stopped timer never calls fn again. Any thread. */
YT_API void yt_timer_stop(yt_timer *t);
/** True while the timer is started (a oneshot timer stops once it fired). Any thread. */
YT_API bool yt_timer_running(yt_timer *t);
/** Changes the interval; applies from the next (re)start. YT_EINVAL for a negative interval. */
YT_API int yt_timer_set_interval(yt_timer *t, double interval);
/** Stops and frees the timer; a callback running right now on another thread finishes first.
 *  May be called from the timer's own callback. NULL is fine. */
YT_API void yt_timer_free(yt_timer *t);

/* ---------------------------------------------------------------------------------------------
 * Contexts and connections
 *
 * ADDRESSES (docs/guide.md, "Transports and authentication"):
 * - "[tcp://]host:port": TCP over IPv4, exactly as the Python reference; "localhost" is
 *   127.0.0.1, an empty host is any address (bind) or the loopback (connect). Any other protocol
 *   name before "://" is taken as TCP too, as the reference does.
 * - "tcp6://host:port", "[v6]:port", "tcp://[v6]:port": TCP over IPv6 ("localhost" is ::1;
 *   an unbracketed tcp6 host is split from the port at the last ':'). A name with no IPv6
 *   address fails with YT_EADDR ("Cannot resolve host 'x' to an IPv6 address: ...").
 * - "ipc:///abs/path", "unix:///abs/path" (and relative "ipc://rel/path", resolved against the
 *   working directory): a Unix domain stream socket; at most 107 bytes of path (YT_EADDR
 *   "Socket path too long..."; "The socket path is empty."). The socket file is created with
 *   mode 0600 and removed when the listening socket closes; a stale file left by a dead process
 *   is replaced. These forms are our extension: the Python reference only speaks IPv4 TCP.
 *
 * A context is a node of a yoton network. It connects to other contexts over persistent TCP
 * connections; every context routes packages for the others, so contexts form a network. Each
 * connection has a sender and a receiver thread; a bound connection has a host thread waiting
 * for its peer (it becomes the receiver once the peer arrived).
 *
 * Lifetimes: a context is owned by its creator. Connections are reference-counted: the context
 * holds one while it lists the connection, and every yt_connection handle given to the caller is
 * a new reference that the caller must drop with yt_connection_release(). A released connection
 * that is still open keeps working (the context still holds it); a closed one is dropped by the
 * context at its next bind/connect/listing or when the context is freed. Signals of a connection
 * keep it alive until their queued events have run, so a handler always sees a valid source.
 * ------------------------------------------------------------------------------------------- */

/** A context (opaque): a node of a yoton network, owning connections and channels. */
typedef struct yt_context yt_context;
/** A connection (opaque, reference-counted) between two contexts. */
typedef struct yt_connection yt_connection;

/** Whether heartbeats prove the IO threads or the application alive. */
typedef enum yt_heartbeat_policy {
    /** Heartbeats whenever the link is idle (the reference's behaviour): a peer times out only
     *  when the process is stopped or the network is cut. */
    YT_HEARTBEAT_IO = 0,
    /** Heartbeats only while the application has shown within the connection's timeout that it
     *  is alive, by calling yt_loop_process()/yt_loop_run(), yt_context_alive(), or a blocking
     *  receive or flush on this context. A kernel busy in a long computation thus looks busy to
     *  its IDE, as a Python kernel running extension code does. Data keeps flowing either way. */
    YT_HEARTBEAT_APP = 1
} yt_heartbeat_policy;

/** Settings of a new context; fill with yt_context_options_init() and change what you need. */
typedef struct yt_context_options {
    size_t queue_size;          /**< bound of every package queue; default 10000 */
    yt_discard_mode discard;    /**< what a full queue drops; default YT_DISCARD_OLD */
    size_t max_package_size;    /**< larger incoming payloads close the connection;
                                     default 1 GiB */
    int sndbuf;                 /**< SO_SNDBUF for new sockets; 0 = system default */
    int rcvbuf;                 /**< SO_RCVBUF for new sockets; 0 = system default */
    yt_loop *loop;              /**< where signals are posted; NULL = yt_loop_default() */
    yt_heartbeat_policy heartbeat; /**< default YT_HEARTBEAT_IO */
} yt_context_options;

/** Fills o with the defaults. */
YT_API void yt_context_options_init(yt_context_options *o);

/** A new context with a fresh id (see yt_context_id). opts NULL = defaults. The loop named in
 *  the options must outlive the context. YT_EINVAL (queue_size 0), YT_ENOMEM. */
YT_API int yt_context_new(const yt_context_options *opts, yt_context **out);

/** Closes every connection ("Closed by the context.") and channel, waits for the IO threads,
 *  and frees the context. Channel and connection handles still held stay valid to release or
 *  free, but no longer do anything. Must not be called from a handler running on a loop that
 *  this call would wait for, nor twice. NULL is fine. */
YT_API void yt_context_free(yt_context *ctx);

/** The context's 64-bit id: a time part (high 32 bits) and a random part. Any thread. */
YT_API uint64_t yt_context_id(const yt_context *ctx);

/**
 * Starts hosting at address (see ADDRESSES below) and returns at once:
 * a host thread waits for one peer, runs the handshake and from then on the connection is live.
 * A peer failing the handshake (a web browser, a telnet session) gets the reference's error
 * line and is dropped; the host keeps waiting. After a successful handshake the listening socket
 * is closed, so the port can be bound again.
 *
 * max_tries (>= 1) ports are tried starting AT the given port (+0, +1, +2, ...; the reference
 * starts at +1, a documented divergence). Port 0 binds an ephemeral port:
 * yt_connection_port1() tells the real one. An ipc address has no next port: max_tries is not
 * used, and a live listener at the path is YT_EBIND ("... address in use (a process listens
 * there)"). Packages sent while nobody is connected wait in the
 * connection's queue (bounded; discarding per the options).
 *
 * out, when not NULL, receives a reference (release with yt_connection_release()). name may be
 * NULL. YT_EADDR (bad address; detail says why), YT_EBIND ("Could not bind to any of the N
 * ports tried" or the socket error), YT_ENOMEM, YT_ESYS. Any thread.
 */
YT_API int yt_context_bind(yt_context *ctx, const char *address, int max_tries, const char *name,
                           yt_connection **out);

/**
 * Connects to a context hosting at address. While nobody listens it retries until timeout
 * seconds passed (at least 0.01 s; negative = 1 s, the reference's default), then fails with
 * YT_ECONNECT and a detail like "Cannot connect to 127.0.0.1 on 5555: Connection refused". A
 * peer that is not yoton, or is this very context, fails with YT_EHANDSHAKE ("Could not connect:
 * Handshake failed." / "...(context cannot connect to self)."). On success the context
 * broadcasts NEW_CONNECTION, as the reference does. Blocks at most timeout + 2 s (handshake),
 * + 2 s more with a key (yt_context_set_key).
 * out as for yt_context_bind. YT_EADDR, YT_ENOMEM, YT_ESYS. Any thread.
 */
YT_API int yt_context_connect(yt_context *ctx, const char *address, double timeout,
                              const char *name, yt_connection **out);

/**
 * yt_context_connect, binding the local end to the host local (a numeric address or a name,
 * IPv6 with or without brackets, resolved in the family of address; the port is left to the
 * system) before connecting: the source address on a multi-homed machine. local NULL is plain
 * yt_context_connect. YT_EINVAL for an ipc address (a local address applies to TCP only),
 * YT_EADDR when local does not resolve in that family, YT_ECONNECT ("Cannot bind the local
 * address ...: Cannot assign requested address") when it is not an address of this machine;
 * otherwise as yt_context_connect. yt_connection_hostname1()/port1() report the address used.
 * Any thread.
 */
YT_API int yt_context_connect_from(yt_context *ctx, const char *address, const char *local,
                                   double timeout, const char *name, yt_connection **out);

/**
 * Starts hosting on a listening socket made by someone else (socket activation, a supervisor):
 * a connected or bound-but-not-listening socket, or anything but a SOCK_STREAM socket of
 * AF_INET, AF_INET6 or AF_UNIX, is YT_EINVAL ("Descriptor 3 is not listening (call listen()
 * first)", "... is not a stream socket ...", "... is not a socket ..."). Works as
 * yt_context_bind afterwards: one peer, which closes the listening socket once it passed the
 * handshake. The descriptor belongs to the library from the call on, even when it fails (it is
 * closed then); it is made close-on-exec. A socket file behind it is never removed by the
 * library. out as for yt_context_bind. YT_ENOMEM, YT_ESYS. Any thread.
 */
YT_API int yt_context_bind_fd(yt_context *ctx, int listen_fd, const char *name,
                              yt_connection **out);

/** Which side of the handshake an adopted descriptor plays: in yoton the client sends its
 *  greeting first and the host answers, so the two ends must pick opposite roles. */
typedef enum yt_role {
    YT_ROLE_CLIENT = 0, /**< speaks first, as yt_context_connect; announces NEW_CONNECTION */
    YT_ROLE_HOST = 1    /**< answers, as a bound connection does */
} yt_role;

/**
 * Makes a connection of an already-connected stream socket (TCP or Unix; for example one end of
 * a socketpair inherited from a parent process): runs the handshake (and the authentication
 * when a key is set) as role over it, then the connection works as any other. Blocks for the
 * handshake (at most about 2 s, 4 s with a key) until the other end runs its own side with the
 * opposite role. The descriptor belongs to the library from the call on, even when it fails
 * (it is closed then); it is made blocking and close-on-exec. A child process that inherits an
 * end across exec must therefore get it without FD_CLOEXEC (clear it in the child between fork
 * and exec, or dup2 it to a fixed number), and the parent should close its copy of the child's
 * end. YT_EINVAL (not a socket, not a stream socket, not connected, a listening socket, unknown
 * role), YT_EHANDSHAKE ("Could not connect: ..." for a client, "Handshake failed: <why>" for a
 * host), YT_ENOMEM, YT_ESYS. out as for yt_context_bind. Any thread.
 */
YT_API int yt_context_adopt(yt_context *ctx, int fd, yt_role role, const char *name,
                            yt_connection **out);

/**
 * Connects two contexts of this process through a new socketpair(AF_UNIX): host adopts one end
 * as YT_ROLE_HOST, client the other as YT_ROLE_CLIENT (the handshakes run on two threads). On
 * success *out_host and *out_client (each may be NULL) receive references to the two
 * connections, both named name. For a parent and the child it forks, call socketpair() yourself
 * and yt_context_adopt() one end in each process with opposite roles. YT_EINVAL (NULL or equal
 * contexts), YT_ESYS, or the error of either adopt (nothing stays connected then). Any thread.
 */
YT_API int yt_context_pair(yt_context *host, yt_context *client, const char *name,
                           yt_connection **out_host, yt_connection **out_client);

/**
 * Requires a shared key from every peer of connections opened from now on (bind, connect,
 * adopt, pair; connections already open keep what they had). Off by default (len 0 turns it
 * off; key may then be NULL). After the yoton greeting, both ends prove that they hold the key
 * with an HMAC-SHA256 challenge-response over fresh random nonces (docs/transports.md gives the
 * bytes); the key itself never travels. A host turns away a peer without the key, or with
 * another one, and keeps waiting for the right one (yt_connection_last_refusal() tells why); a
 * client fails to connect with YT_EHANDSHAKE and a detail such as "Could not connect:
 * Authentication failed: the host refused our key (it has a different key)". Peers without
 * this extension (the Python reference) cannot connect to a keyed context, nor can a keyed
 * client connect to them. This is authentication only: traffic is not encrypted.
 *
 * The key is copied (at least 16, at most 1024 bytes; YT_EINVAL otherwise) and wiped from
 * memory when replaced or when the context is freed. YT_ENOMEM. Any thread.
 */
YT_API int yt_context_set_key(yt_context *ctx, const void *key, size_t len);

/** Closes every connection of the context ("Closed by the context.") and every channel. The
 *  context stays usable: bind and connect again. Any thread except the context's IO threads. */
YT_API void yt_context_close(yt_context *ctx);
/** Closes every channel of the context; connections stay. */
YT_API void yt_context_close_channels(yt_context *ctx);

/** Waits until everything queued on every connected connection was written to its socket.
 *  YT_ETIMEDOUT. (Success does not mean that the peer has read it.) */
YT_API int yt_context_flush(yt_context *ctx, double timeout);

/** Number of connected (not waiting) connections. Any thread. */
YT_API size_t yt_context_connection_count(yt_context *ctx);

/**
 * Lists connections: connected ones, and with include_waiting also those still waiting for a
 * peer. Writes up to cap references into arr (each to be released) and the total number into
 * *n (which may exceed cap). Any thread.
 */
YT_API int yt_context_connections(yt_context *ctx, bool include_waiting, yt_connection **arr,
                                  size_t cap, size_t *n);

/** The first alive connection with that name, as a new reference, or NULL. */
YT_API yt_connection *yt_context_connection_by_name(yt_context *ctx, const char *name);

/** Tells a context with the YT_HEARTBEAT_APP policy that the application is alive. Cheap; any
 *  thread. */
YT_API void yt_context_alive(yt_context *ctx);

/** Number of packages this context's queues discarded because they were full (startup queue and
 *  every connection's out-queue). */
YT_API uint64_t yt_context_discarded(yt_context *ctx);

/** Adds a reference. */
YT_API yt_connection *yt_connection_ref(yt_connection *c);
/** Drops a reference; the last one (with the context's) frees the connection, closing it first
 *  if it is still open. NULL is fine. */
YT_API void yt_connection_release(yt_connection *c);

/**
 * Closes the connection: sends the close package (the peer sees "Closed from other end."),
 * flushes for at most 1 s, stops both threads and emits closed(reason) once. reason NULL =
 * "Closed on command.". Idempotent. Safe from any thread, including a handler of this
 * connection's own signals and the connection's IO threads (then it does not wait for them).
 */
YT_API void yt_connection_close(yt_connection *c, const char *reason);
/** Like yt_connection_close, but without telling the other end (reason NULL =
 *  "Unspecified problem"). */
YT_API void yt_connection_close_on_problem(yt_connection *c, const char *reason);

/** Waits until everything queued on the connection before the call was written to the socket.
 *  YT_ETIMEDOUT; YT_ESTATE when the connection is not connected; YT_ECLOSED when it closes. */
YT_API int yt_connection_flush(yt_connection *c, double timeout);

/** Signal emitted (flag 1) once when nothing arrived for timeout seconds and (flag 0) once when
 *  bytes flow again. Borrowed, lives as long as the connection. */
YT_API yt_signal *yt_connection_timedout_signal(yt_connection *c);
/** Signal emitted once when the connection ends; yt_event.text is the reason. Borrowed. */
YT_API yt_signal *yt_connection_closed_signal(yt_connection *c);

/** The timeout for timedout, in seconds (default and minimum 0.5). YT_EINVAL below 0.5. */
YT_API int yt_connection_set_timeout(yt_connection *c, double seconds);
/** The timeout for timedout, in seconds. */
YT_API double yt_connection_timeout(yt_connection *c);

YT_API bool yt_connection_is_alive(yt_connection *c);     /**< waiting or connected */
YT_API bool yt_connection_is_connected(yt_connection *c); /**< connected (hosting or client) */
YT_API bool yt_connection_is_waiting(yt_connection *c);   /**< bound, no peer yet */
/** The name; borrowed, valid until renamed. Never NULL. */
YT_API const char *yt_connection_name(yt_connection *c);
/** Renames the connection (the name is copied). YT_EINVAL (name NULL), YT_ENOMEM. */
YT_API int yt_connection_set_name(yt_connection *c, const char *name);
/** Copies the host text of this end (1) or the other end (2, "" when not connected) into buf:
 *  the numeric address for TCP; for a Unix socket the path of that end as the kernel reports it
 *  (the bound path on the host's side, "" for a connecting client's own end and for both ends
 *  of a socketpair). YT_EINVAL (buffer too small: truncated). */
YT_API int yt_connection_hostname1(yt_connection *c, char *buf, size_t size);
/** Like yt_connection_hostname1, for the other end. */
YT_API int yt_connection_hostname2(yt_connection *c, char *buf, size_t size);
/** The local port (the bound port); -1 for a Unix socket. */
YT_API int yt_connection_port1(yt_connection *c);
/** The peer's port; 0 when not connected, -1 for a Unix socket. */
YT_API int yt_connection_port2(yt_connection *c);
YT_API uint64_t yt_connection_id1(yt_connection *c); /**< own context id */
/** The peer's id as its handshake said (for a Python peer whose id is below 2^60, this is
 *  the reference's misparse; see docs). 0 when not connected. */
YT_API uint64_t yt_connection_id2(yt_connection *c);
YT_API long yt_connection_pid1(yt_connection *c); /**< own process id */
YT_API long yt_connection_pid2(yt_connection *c); /**< the peer's process id; 0 if not connected */
/** The reason it closed (borrowed, stable once closed), or NULL while open. */
YT_API const char *yt_connection_close_reason(yt_connection *c);
/**
 * Copies into buf why a bound connection last turned a peer away ("" when it never did): a
 * failed greeting ("Handshake failed.", "Handshake timed out.") or a failed authentication
 * ("Authentication failed: the peer has no key (it sent packages instead of an answer)"). The
 * connection keeps waiting for another peer after each refusal. YT_EINVAL (buffer too small:
 * truncated). Any thread.
 */
YT_API int yt_connection_last_refusal(yt_connection *c, char *buf, size_t size);
/** Packages its out-queue discarded because it was full. */
YT_API uint64_t yt_connection_discarded(yt_connection *c);

/* ---------------------------------------------------------------------------------------------
 * Messages
 *
 * A yt_msg is one received message: its payload exactly as it came from the socket, read once
 * into its own buffer and handed over without a copy. Owned by the caller; free with
 * yt_msg_free(). NULL stands for the empty message: every accessor accepts it. yt_msg_new()
 * makes one to send without a copy (yt_channel_send_msg()).
 * ------------------------------------------------------------------------------------------- */

/** A message (opaque): one received (its payload and the id of its sender), or one made by
 *  yt_msg_new() to be sent. */
typedef struct yt_msg yt_msg;

YT_API const void *yt_msg_data(const yt_msg *m); /**< the payload (borrowed); "" for NULL */
YT_API size_t yt_msg_size(const yt_msg *m);      /**< payload bytes; 0 for NULL */
/** The payload as a NUL-terminated string (a NUL always follows the payload), "" for NULL. */
YT_API const char *yt_msg_text(const yt_msg *m);
/** Decodes an OBJECT payload; *out owned by the caller. The empty message decodes as None.
 *  YT_EDECODE. */
YT_API int yt_msg_value(const yt_msg *m, yt_value **out);
/** The id of the context that sent it (0 for NULL). */
YT_API uint64_t yt_msg_source(const yt_msg *m);
/** Frees a message. NULL is fine. */
YT_API void yt_msg_free(yt_msg *m);
/**
 * A new message of len payload bytes to send without a copy (large payloads, or data produced
 * in place): write the payload through yt_msg_buffer(), then hand it to yt_channel_send_msg(),
 * which takes it. *out is owned by the caller until then (yt_msg_free() if it is not sent).
 * The payload is uninitialised; a NUL follows it. YT_EINVAL (out NULL), YT_ENOMEM.
 */
YT_API int yt_msg_new(size_t len, yt_msg **out);
/** The writable payload of a message made by yt_msg_new() and not yet sent; NULL for any other
 *  message (received ones are read-only). */
YT_API void *yt_msg_buffer(yt_msg *m);

/* ---------------------------------------------------------------------------------------------
 * Channels
 *
 * A channel lives on a context and is addressed by its slot: a hash of "base.type.pattern",
 * stripped of surrounding whitespace and lower-cased. Only channels of the same base, message
 * type and pattern meet. Lower-casing covers ASCII and Latin-1 letters; the Python reference
 * lower-cases all of Unicode, so a base with other upper-case letters (Greek, Cyrillic, U+0130)
 * gets a different slot there: keep such names lower-case to meet Python peers.
 * Message types are named: YT_TEXT ("txt", UTF-8 text), YT_BINARY ("bin", bytes), YT_OBJECT
 * ("obj", yt_value), or any other name for a user-defined type (bytes, kept apart by name).
 *
 * A channel handle is owned by its creator: yt_channel_free() closes and frees it. Channels are
 * safe to use from any thread; one channel may be used by several threads at once.
 * ------------------------------------------------------------------------------------------- */

/** A channel (opaque): a publisher, subscriber, requester, replier or state channel. */
typedef struct yt_channel yt_channel;

/** Message type: UTF-8 text (the reference's TEXT). */
#define YT_TEXT "txt"
/** Message type: bytes (the reference's BINARY). */
#define YT_BINARY "bin"
/** Message type: a yt_value in the OBJECT format (the reference's OBJECT). */
#define YT_OBJECT "obj"
/**
 * A zlib-compressed variant of any message type: the type name "zlib-" + the inner name, e.g.
 * YT_ZLIB(YT_TEXT) = "zlib-txt". Payloads on the wire are zlib streams (RFC 1950, what Python's
 * zlib.compress() writes) of the inner type's bytes; send and recv compress and decompress
 * transparently, so yt_msg_data() gives the inner bytes. A Python peer can implement the same
 * type in a few lines (see docs/message-types.md). Decompression is bounded by the context's
 * maximum package size; a payload that is not valid zlib or inflates beyond it is dropped and
 * counted in yt_channel_discarded().
 */
#define YT_ZLIB(type) "zlib-" type

/** A publisher: sends to every subscriber of the same slot anywhere in the network.
 *  YT_EINVAL (empty or invalid names), YT_EBUSY ("Slot not free: <name>"), YT_ENOMEM. */
YT_API int yt_pub_new(yt_context *ctx, const char *slot_base, const char *type,
                      yt_channel **out);
/** A subscriber: queues what publishers on its slot send (bounded by the context's queue size
 *  and discard mode). Errors as yt_pub_new. */
YT_API int yt_sub_new(yt_context *ctx, const char *slot_base, const char *type,
                      yt_channel **out);

/** Closes (unregisters) and frees a channel; blocked receivers return YT_ECLOSED first. NULL is
 *  fine. */
YT_API void yt_channel_free(yt_channel *ch);
/** Closes the channel: it stops sending and receiving and frees its slots; messages still
 *  queued are dropped. Blocked receivers wake with YT_ECLOSED. Idempotent. */
YT_API void yt_channel_close(yt_channel *ch);
/** True once the channel is closed (by yt_channel_close, its context, or yt_context_close). */
YT_API bool yt_channel_closed(yt_channel *ch);

/**
 * Sends len bytes as one message (any message type; for YT_TEXT they must be UTF-8). An empty
 * message is not sent (as in the reference) and returns YT_OK. The bytes are copied; the call
 * returns once the message is queued (it may be held back for at most 1 s while a connection's
 * queue is congested). YT_ECLOSED (closed channel), YT_EINVAL (not a sending channel, invalid
 * UTF-8 on a text channel), YT_ENOMEM.
 */
YT_API int yt_channel_send(yt_channel *ch, const void *data, size_t len);
/**
 * Sends a message made by yt_msg_new() without copying its payload: the payload is written to
 * the socket from the message's own buffer. Takes m in every case (success or error); do not
 * use or free it afterwards. The rules and errors of yt_channel_send() apply (an empty message
 * is not sent; zlib channels compress into a new buffer), plus YT_EINVAL when m is NULL, was not
 * made by yt_msg_new() or was already sent. Thread-safe as yt_channel_send().
 */
YT_API int yt_channel_send_msg(yt_channel *ch, yt_msg *m);
/** Sends NUL-terminated UTF-8 text. */
YT_API int yt_channel_send_text(yt_channel *ch, const char *text);
/** Sends a value encoded as OBJECT (any channel type; meant for YT_OBJECT). YT_EENCODE. */
YT_API int yt_channel_send_value(yt_channel *ch, const yt_value *v);

/**
 * Takes the next message, waiting up to timeout seconds (0: do not wait; negative: until one
 * arrives or the channel closes). *out receives a message owned by the caller. Where the
 * reference returns an empty message, this returns YT_EAGAIN (nothing there with timeout 0),
 * YT_ETIMEDOUT, or YT_ECLOSED, and sets *out to NULL, which every yt_msg accessor reads as the
 * empty message. YT_EINVAL on a channel that does not receive.
 */
YT_API int yt_channel_recv(yt_channel *ch, double timeout, yt_msg **out);
/** Takes every queued message at once: *msgs receives an array of *n messages (free each, then
 *  the array with yt_free); *n may be 0 (then *msgs is NULL). YT_ECLOSED, YT_EINVAL. */
YT_API int yt_channel_recv_all(yt_channel *ch, yt_msg ***msgs, size_t *n);
/** Number of messages queued. */
YT_API size_t yt_channel_pending(yt_channel *ch);
/** Messages the channel's queue discarded because it was full. */
YT_API uint64_t yt_channel_discarded(yt_channel *ch);
/** Signal emitted when messages arrive; coalesced: many messages, one event until handled.
 *  Borrowed; yt_event.source is the channel. */
YT_API yt_signal *yt_channel_received_signal(yt_channel *ch);
/** The channel's slot ids (sending and receiving; 0 when the channel has none). */
YT_API uint64_t yt_channel_slot_out(yt_channel *ch);
/** The receiving slot id (0 when the channel does not receive). */
YT_API uint64_t yt_channel_slot_in(yt_channel *ch);

/* ---------------------------------------------------------------------------------------------
 * Channels: more of pub/sub
 * ------------------------------------------------------------------------------------------- */

/**
 * Sync mode: when on, a subscriber whose queue holds more than 32 messages asks every publisher
 * on its slot to hold back ("full"), and releases them once below 16 ("ok"), repeating its
 * status every 4 s while full. A publisher holding a "full" from any subscriber waits up to 1 s
 * per send; the hold expires 10 s after the last status. No event loop needs to run on either
 * side: the subscriber checks on arrival and on every receive. Turning it off while full sends
 * "ok". YT_EINVAL when ch is not a subscriber.
 *
 * Unlike the reference (whose 10 KiB socket buffers keep little in flight), a subscriber in
 * sync mode never discards: when its queue is full, the connection it is fed by stops reading
 * until the application takes a message, so TCP flow control holds the senders back. Everything
 * else arriving on that connection waits too; read sync-mode subscribers promptly.
 */
YT_API int yt_sub_set_sync_mode(yt_channel *sub, bool on);

/**
 * Reads several subscribers in the order their messages arrived at this context. Among subs[0..n)
 * finds the one holding the oldest pending message, waiting up to timeout for one to arrive,
 * and stores it in *which (borrowed). Then yt_sub_recv_selected() on *which takes its messages
 * that arrived before any message pending in the others. YT_ETIMEDOUT / YT_EAGAIN (timeout 0)
 * when none has a message; YT_EINVAL when a channel is not a subscriber or n is 0.
 */
YT_API int yt_sub_select(yt_channel *const *subs, size_t n, double timeout, yt_channel **which);
/** After yt_sub_select() chose sub: its messages older than every message pending in the other
 *  channels of that select call, as yt_channel_recv_all() returns them. */
YT_API int yt_sub_recv_selected(yt_channel *sub, yt_msg ***msgs, size_t *n);
/**
 * The next message of any of subs[0..n), in arrival order across them, waiting up to timeout.
 * *index receives the position of the channel it came from. Errors as yt_channel_recv.
 */
YT_API int yt_sub_recv_any(yt_channel *const *subs, size_t n, double timeout, size_t *index,
                           yt_msg **out);

/** Iteration: the next pending message or NULL when none (never waits). */
YT_API yt_msg *yt_channel_next(yt_channel *ch);

/**
 * When on, a send that would make any queue on its way out of this context discard a message
 * (the startup queue, or the out-queue of a connection) fails with YT_EFULL and sends nothing,
 * instead of discarding per the context's mode. Off by default. For sending channels.
 */
YT_API int yt_channel_set_refuse_when_full(yt_channel *ch, bool on);

/* ---------------------------------------------------------------------------------------------
 * Request / reply
 *
 * A ReqChannel calls methods of RepChannels on its slot anywhere in the network and gets a
 * future per call. Load balancing is the reference's: the request is announced to every
 * replier, the first free one to acknowledge gets it. Arguments and results are yt_values
 * (OBJECT messages); request and reply channels always use the OBJECT type.
 * ------------------------------------------------------------------------------------------- */

/** The pending result of one request (opaque), owned by the caller of yt_req_call. */
typedef struct yt_future yt_future;

/** A requester on slot_base. Errors as yt_pub_new. */
YT_API int yt_req_new(yt_context *ctx, const char *slot_base, yt_channel **out);

/**
 * Calls method with positional args (a list or tuple, or NULL for none) and keyword args (a
 * dict, or NULL), both copied. *out receives a future owned by the caller (free with
 * yt_future_free; freeing a pending future cancels it). The request is automatically cancelled
 * when no replier acknowledged it within the channel's auto-cancel timeout (default 10 s).
 * YT_EINVAL (not a requester, bad args/kwargs types), YT_EENCODE, YT_ECLOSED, YT_ENOMEM.
 */
YT_API int yt_req_call(yt_channel *req, const char *method, const yt_value *args,
                       const yt_value *kwargs, yt_future **out);
/** The auto-cancel timeout given to new futures of this requester (seconds; negative: never). */
YT_API int yt_req_set_auto_cancel_timeout(yt_channel *req, double seconds);

/**
 * Waits up to timeout seconds for the result and stores a copy in *out (owned by the caller).
 * Makes progress by itself (re-announcing the request, noticing a lost replier) without any
 * event loop running. YT_ETIMEDOUT (still pending; call again), YT_ECANCELED, YT_EREMOTE (the
 * replier reported an error; yt_future_exception() has its message), YT_ECONNLOST (the chosen
 * replier's connection closed before it answered), YT_EDECODE (the reply could not be decoded),
 * YT_ECLOSED (the requester channel was closed: a call not yet taken by a replier then also
 * reads as cancelled).
 */
YT_API int yt_future_result(yt_future *f, double timeout, yt_value **out);
/** Like yt_future_result, but cancels the request when it times out: YT_ECANCELED when that
 *  cancelled it, YT_ETIMEDOUT when a replier had already taken it (it can no longer be
 *  cancelled; wait again or give up). */
YT_API int yt_future_result_or_cancel(yt_future *f, double timeout, yt_value **out);
/** The error message of a failed future (borrowed, valid while f lives), or NULL. A replier's
 *  message ends with "\n", as the reference's do. */
YT_API const char *yt_future_exception(yt_future *f);
/** Cancels a request no replier has taken yet; true when it is now cancelled. A running
 *  request cannot be cancelled (it may already be executing). */
YT_API bool yt_future_cancel(yt_future *f);
/** True once the request was cancelled (by yt_future_cancel or the auto-cancel timeout). */
YT_API bool yt_future_cancelled(yt_future *f);
/** True once a replier acknowledged the request and until it is done. */
YT_API bool yt_future_running(yt_future *f);
/** True once it has a result, failed, or was cancelled. */
YT_API bool yt_future_done(yt_future *f);
/** Runs fn(f, user) through the requester's event loop when f is done (at once, queued, if it
 *  already is). YT_ENOMEM; if it fails, fn is never called. The future must outlive the call. */
YT_API int yt_future_add_done_callback(yt_future *f, void (*fn)(yt_future *f, void *user),
                                       void *user);
/** Changes this future's auto-cancel timeout, counted from the call (negative: never). */
YT_API int yt_future_set_auto_cancel_timeout(yt_future *f, double seconds);
/** Frees a future; one still waiting for a replier is cancelled first. NULL is fine. */
YT_API void yt_future_free(yt_future *f);

/**
 * A request handler: called with the positional args (a tuple) and keyword args (a dict),
 * both borrowed. Returns the result (consumed by the library), or NULL after writing a message
 * into err (errsize bytes): the caller's future then fails with YT_EREMOTE and that message
 * followed by "\n" (the reference's error replies end their first line so; a requester should
 * treat the message as text). An unknown method fails with "Method '<name>' not implemented.".
 * A result that cannot be encoded also gives an error reply (the reference sends nothing).
 */
typedef yt_value *(*yt_rep_fn)(const yt_value *args, const yt_value *kwargs, void *user,
                               char *err, size_t errsize);

/** How a replier handles requests. */
typedef enum yt_rep_mode {
    YT_REP_OFF = 0,   /**< requests wait until yt_rep_process() is called */
    YT_REP_EVENT = 1, /**< handled by the context's event loop (yt_loop_process) */
    YT_REP_THREAD = 2 /**< handled on the channel's own thread */
} yt_rep_mode;

/** A replier on slot_base, in mode YT_REP_OFF, knowing the built-in method "echo". Errors as
 *  yt_pub_new. */
YT_API int yt_rep_new(yt_context *ctx, const char *slot_base, yt_channel **out);
/** Registers (or replaces) the handler of method. YT_EINVAL for a bad name or NULL fn. */
YT_API int yt_rep_register(yt_channel *rep, const char *method, yt_rep_fn fn, void *user);
/** Sets how requests are handled (default YT_REP_OFF). YT_EINVAL (not a replier, unknown
 *  mode), YT_ECLOSED (switching a closed replier on). */
YT_API int yt_rep_set_mode(yt_channel *rep, yt_rep_mode mode);
/** Handles pending requests on the calling thread, waiting up to timeout for the first one.
 *  Returns the number handled (>= 0) or an error. Any mode; meant for YT_REP_OFF. */
YT_API int yt_rep_process(yt_channel *rep, double timeout);

/* ---------------------------------------------------------------------------------------------
 * State channels
 *
 * A state is one value shared by every StateChannel on the slot: yt_channel_send* sets it (an
 * unchanged value is not sent again, an empty one is ignored) and yt_channel_recv() returns the
 * latest without waiting (YT_EAGAIN before any state exists). A context that connects makes
 * every state channel in the network send its state again, so newcomers learn it.
 *
 * As in the reference the last arrival wins and there are no timestamps: when a context joins,
 * every state channel re-sends what it holds, readers included, so for a moment an older copy
 * may arrive after a newer one. A program that owns a state and must have it win should send
 * it again (yt_state_send_last) after others joined.
 * ------------------------------------------------------------------------------------------- */

/** A state channel on slot_base with message type type. Errors as yt_pub_new. */
YT_API int yt_state_new(yt_context *ctx, const char *slot_base, const char *type,
                        yt_channel **out);
/** Sends the current state again (if there is one). */
YT_API int yt_state_send_last(yt_channel *state);

/* ---------------------------------------------------------------------------------------------
 * Streams: stdio over channels, for kernels that redirect stdout/stderr/stdin
 * ------------------------------------------------------------------------------------------- */

/** How a writing stream cuts messages. */
typedef enum yt_stream_mode {
    YT_STREAM_WRITE = 0, /**< each write() of the FILE's buffer is a message */
    YT_STREAM_LINE = 1   /**< each complete line (with its newline) is a message; the rest is
                              sent on fflush/fclose */
} yt_stream_mode;

/**
 * A FILE* whose output is published on pub (a publisher of a text or binary type). The FILE is
 * line buffered in YT_STREAM_LINE mode and fully buffered otherwise; fclose() flushes it (the
 * channel stays open). NULL on error (errno set). The channel must outlive the FILE.
 */
YT_API FILE *yt_stream_writer(yt_channel *pub, yt_stream_mode mode);
/**
 * A FILE* that reads what arrives on sub (a subscriber); reads block until a message comes, and
 * return end-of-file once the channel is closed. NULL on error. The channel must outlive the
 * FILE.
 */
YT_API FILE *yt_stream_reader(yt_channel *sub);

/* ---------------------------------------------------------------------------------------------
 * Client/server: do_request and RequestServer
 *
 * A plain line-based request/reply, one connection per request, no handshake (the reference's
 * clientserver module, telnet-like). Not part of a context network. Addresses are those of
 * yt_context_bind/connect: IPv4 TCP (the reference's only form), IPv6 and Unix sockets.
 * ------------------------------------------------------------------------------------------- */

/** The longest reply yt_do_request accepts and the longest request a server reads (bytes). */
#define YT_REQUEST_MAX (16u << 20)

/**
 * Sends request to the server at address ("host:port", "[v6]:port", "ipc:///path", as for
 * contexts): the UTF-8 text, followed by CR LF unless it already ends with one; then shuts down
 * its sending side and reads the reply until the server closes or a CR LF arrives. As in the reference, a reply is cut at
 * its first CR LF, which is included. Works against any line-based server, not only yoton's.
 *
 * timeout > 0 bounds the whole exchange in seconds; otherwise it waits as long as the server
 * keeps the connection open. On success *reply receives the text (free with yt_free). On
 * YT_ETIMEDOUT *reply receives what had arrived (possibly ""), as the reference returns the
 * partial text. YT_ECONNECT ("No server is listening at the given port."), YT_EADDR, YT_EINVAL
 * (request not UTF-8), YT_ETOOBIG (more than YT_REQUEST_MAX bytes without a CR LF), YT_ESYS.
 * Blocks the calling thread; any thread.
 */
YT_API int yt_do_request(const char *address, const char *request, double timeout,
                         char **reply);

/** A RequestServer (opaque): a line-based request/reply server (the reference's). */
typedef struct yt_request_server yt_request_server;

/**
 * A request handler: request is the text as received, including its CR LF when the client sent
 * one (as in the reference). Returns the reply, malloc'd (the server frees it); the server adds
 * CR LF unless it ends with one. NULL replies with an empty line. Runs on the server's thread,
 * or on a thread per connection in async mode.
 */
typedef char *(*yt_request_fn)(const char *request, void *user);

/**
 * A server listening at address (port 0: an ephemeral port, see yt_request_server_port; an
 * ipc:// path is created owner-only (0600), a stale file there is replaced, and the file is
 * removed by yt_request_server_free). fn
 * NULL uses the reference's default handler, which answers "Requested: " + request. async
 * handles each connection on its own thread so a slow handler does not hold up the others.
 * Each connection: the request is read for at most 1 s (a silent client gets its partial text
 * handled after 1 s), the reply is sent, the connection closed. A client that sends nothing,
 * garbage or hangs up never stops the server. YT_EADDR, YT_EBIND, YT_ENOMEM.
 */
YT_API int yt_request_server_new(const char *address, yt_request_fn fn, void *user, bool async,
                                 yt_request_server **out);
/** The port the server listens on; 0 for a Unix socket. */
YT_API int yt_request_server_port(yt_request_server *s);
/** Serves on the calling thread until yt_request_server_stop(). YT_EBUSY when already running. */
YT_API int yt_request_server_run(yt_request_server *s);
/** Serves on a thread of its own ("yt-server"). YT_EBUSY when already running. */
YT_API int yt_request_server_start(yt_request_server *s);
/** Makes run/start stop accepting and return; safe from any thread, including a handler. */
YT_API void yt_request_server_stop(yt_request_server *s);
/** Stops the server, waits for its thread and for handlers still running, closes the socket and
 *  frees it. Not from a handler of the same server. NULL is fine. */
YT_API void yt_request_server_free(yt_request_server *s);

#ifdef __cplusplus
}
#endif

#endif /* YOTON_H */
