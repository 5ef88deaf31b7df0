/* One fan-out client process: opens COUNT WebSockets to URL and reports, per
 * change, when the last of them received it. Driven by bench/fanout.py; built
 * by the Makefile (`make bench` depends on it).
 *
 *   fanout_client [-i INITS] [-e] URL PROTOCOL COUNT QUERY [VARIABLES]
 *   (PROTOCOL: graphql-transport-ws | raw; VARIABLES: a file with one JSON
 *   object per line, the variables of each socket's subscription in turn;
 *   INITS: the same for each socket's connection_init payload, its
 *   credential: {"Authorization": "Bearer ..."})
 *
 * stdout lines: "ready OK FAILED", then "event TOKEN RECEIVED FIRST_MS LAST_MS"
 * (epoch milliseconds) once every open socket has a change; with -e (each),
 * "got TOKEN SOCKET MS" for every frame instead, SOCKET its line in the
 * files (0-based): who got what, when only some sockets may; stdin lines:
 * "flush" reports changes not yet everywhere, "close" ends the process.
 * The token is the changed row's uuid, found in the frame (PostGraphile's
 * relatedNodeId is base64 of ["todos", uuid]); after "round TOKEN" on stdin,
 * it is TOKEN instead, for the first frame each socket gets from then on
 * (changes to many rows, each socket watching its own).
 *
 * Why C: the clients share the two cores with the servers they measure, and
 * a Node client (`ws`, or WebSocket framing over `net` by hand) spent 13-18 us
 * of CPU per frame received, more than the servers spend sending one, so
 * the clients' cost set the last arrival and hid the servers'. Here a frame
 * costs a read() and a scan. The framing is RFC 6455's: frames from a server
 * are unmasked; ours are masked with the zero key (any key is allowed), so
 * their payload goes as it is.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { IN_FLIGHT = 64, TOKEN_LEN = 36, MAX_PENDING = 4096 };
enum { TEXT = 0x1, CLOSE = 0x8, PING = 0x9, PONG = 0xa };
enum { CONNECTING, HANDSHAKE, INITIALIZING, LIVE, GONE };

typedef struct {
    int fd;
    int phase;
    int counted;
    const char *variables;
    const char *init; /* connection_init's payload, or NULL: none */
    long round; /* the last round this socket's frame counted in */
    char *buf;
    size_t len, cap;
} Conn;

typedef struct {
    char token[TOKEN_LEN + 1];
    long received;
    double first, last;
} Pending;

static const char *host, *port, *path, *protocol, *query;
static int raw, each;
static long count, started, open_count, failed;
static char round_token[TOKEN_LEN + 1];
static long round_number; /* 0: tokens come from the frames */
static Conn *conns;
static Pending pending[MAX_PENDING];
static int npending;
static int epfd;
static struct addrinfo *address;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

/* The first lowercase uuid in text, or NULL. */
static const char *find_uuid(const char *text, size_t len) {
    for (size_t i = 0; i + TOKEN_LEN <= len; i++) {
        size_t j = 0;
        for (; j < TOKEN_LEN; j++) {
            char c = text[i + j];
            if (j == 8 || j == 13 || j == 18 || j == 23) {
                if (c != '-') break;
            } else if (!is_hex(c)) {
                break;
            }
        }
        if (j == TOKEN_LEN) return text + i;
    }
    return NULL;
}

static int b64(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* The token of a frame into out: its uuid, or the uuid inside a base64 node id. */
static int token_of(const char *text, size_t len, char *out) {
    const char *uuid = find_uuid(text, len);
    if (uuid == NULL) {
        static const char key[] = "\"relatedNodeId\":\"";
        const char *at = memmem(text, len, key, sizeof key - 1);
        if (at == NULL) return 0;
        at += sizeof key - 1;
        char decoded[256];
        size_t n = 0;
        unsigned bits = 0, nbits = 0;
        for (; at < text + len && *at != '"' && n < sizeof decoded; at++) {
            int v = b64(*at);
            if (v < 0) continue;
            bits = (bits << 6) | (unsigned)v;
            nbits += 6;
            if (nbits >= 8) {
                nbits -= 8;
                decoded[n++] = (char)((bits >> nbits) & 0xff);
            }
        }
        uuid = find_uuid(decoded, n);
        if (uuid == NULL) return 0;
        memcpy(out, uuid, TOKEN_LEN);
    } else {
        memcpy(out, uuid, TOKEN_LEN);
    }
    out[TOKEN_LEN] = 0;
    return 1;
}

static void report(int i) {
    printf("event %s %ld %.3f %.3f\n", pending[i].token, pending[i].received, pending[i].first, pending[i].last);
    fflush(stdout);
}

static void received(Conn *c, const char *text, size_t len) {
    double at = now_ms();
    char token[TOKEN_LEN + 1];
    if (each) {
        if (token_of(text, len, token)) {
            printf("got %s %ld %.3f\n", token, (long)(c - conns), at);
            fflush(stdout);
        }
        return;
    }
    if (round_number > 0) {
        if (c->round == round_number) return;
        c->round = round_number;
        memcpy(token, round_token, sizeof token);
    } else if (!token_of(text, len, token)) {
        return;
    }
    int i = 0;
    while (i < npending && strcmp(pending[i].token, token) != 0) i++;
    if (i == npending) {
        if (npending == MAX_PENDING) return;
        npending++;
        memcpy(pending[i].token, token, sizeof token);
        pending[i].received = 0;
        pending[i].first = at;
    }
    pending[i].received++;
    pending[i].last = at;
    if (pending[i].received == open_count) {
        report(i);
        pending[i] = pending[--npending];
    }
}

static void settled(void) {
    if (open_count + failed == count) {
        printf("ready %ld %ld\n", open_count, failed);
        fflush(stdout);
    }
}

/* Writes all of data; the frames are small, so a full buffer is only waited out. */
static void send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return; /* the socket is gone: its close is seen by the reader */
        }
        data += n;
        len -= (size_t)n;
    }
}

static void send_frame(int fd, int opcode, const char *payload, size_t len) {
    char head[8] = {(char)(0x80 | opcode)};
    size_t head_len;
    if (len < 126) {
        head[1] = (char)(0x80 | len);
        head_len = 2;
    } else {
        head[1] = (char)(0x80 | 126);
        head[2] = (char)(len >> 8);
        head[3] = (char)(len & 0xff);
        head_len = 4;
    }
    memset(head + head_len, 0, 4); /* the zero mask key */
    char *out = malloc(head_len + 4 + len);
    memcpy(out, head, head_len + 4);
    memcpy(out + head_len + 4, payload, len);
    send_all(fd, out, head_len + 4 + len);
    free(out);
}

static void connect_next(void);

static void counted(Conn *c, int ok) {
    if (c->counted) return;
    c->counted = 1;
    if (ok) open_count++;
    else failed++;
    settled();
    if (started < count) connect_next();
}

static void drop(Conn *c) {
    if (c->phase == GONE) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->phase = GONE;
    counted(c, 0);
}

static void connect_next(void) {
    Conn *c = &conns[started++];
    c->fd = socket(address->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->phase = CONNECTING;
    if (connect(c->fd, address->ai_addr, address->ai_addrlen) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->phase = GONE;
        counted(c, 0);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

static void on_text(Conn *c, const char *text, size_t len) {
    if (raw) {
        received(c, text, len);
    } else if (c->phase == INITIALIZING) {
        if (memmem(text, len, "\"connection_ack\"", 16) == NULL) return;
        char subscribe[8192];
        int n = snprintf(subscribe, sizeof subscribe,
                         "{\"id\":\"1\",\"type\":\"subscribe\",\"payload\":{\"query\":\"%s\",\"variables\":%s}}",
                         query, c->variables ? c->variables : "{}");
        send_frame(c->fd, TEXT, subscribe, (size_t)n);
        c->phase = LIVE;
        counted(c, 1);
    } else if (memmem(text, len, "\"type\":\"next\"", 13) != NULL) {
        received(c, text, len);
    } else if (memmem(text, len, "\"type\":\"ping\"", 13) != NULL) {
        send_frame(c->fd, TEXT, "{\"type\":\"pong\"}", 15);
    }
}

/* Appends bytes to what c keeps of a partial frame. */
static void keep(Conn *c, const char *data, size_t len) {
    if (c->cap < c->len + len) {
        c->cap = c->len + len;
        c->buf = realloc(c->buf, c->cap);
    }
    memcpy(c->buf + c->len, data, len);
    c->len += len;
}

/* Handles the bytes read (with any partial frame kept from before); returns
 * how many were used, or -1 once the connection is gone. */
static long consume(Conn *c, const char *data, size_t len) {
    size_t at = 0;
    if (c->phase == HANDSHAKE) {
        const char *end = memmem(data, len, "\r\n\r\n", 4);
        if (end == NULL) return 0;
        if (len < 12 || memcmp(data, "HTTP/1.1 101", 12) != 0) return drop(c), -1;
        at = (size_t)(end + 4 - data);
        if (raw) {
            c->phase = LIVE;
            counted(c, 1);
        } else {
            c->phase = INITIALIZING;
            char init[4096];
            int n = c->init ? snprintf(init, sizeof init, "{\"type\":\"connection_init\",\"payload\":%s}", c->init)
                            : snprintf(init, sizeof init, "{\"type\":\"connection_init\"}");
            if (n >= (int)sizeof init) {
                fprintf(stderr, "a connection_init payload longer than %zu bytes\n", sizeof init);
                exit(2);
            }
            send_frame(c->fd, TEXT, init, (size_t)n);
        }
    }
    /* Whole frames only; a partial one waits for more bytes. Servers send
     * these messages unfragmented, so FIN is not tracked. */
    while (len - at >= 2) {
        const unsigned char *f = (const unsigned char *)data + at;
        int opcode = f[0] & 0x0f;
        uint64_t size = f[1] & 0x7f;
        size_t start = 2;
        if (size == 126) {
            if (len - at < 4) break;
            size = ((uint64_t)f[2] << 8) | f[3];
            start = 4;
        } else if (size == 127) {
            if (len - at < 10) break;
            size = 0;
            for (int i = 0; i < 8; i++) size = (size << 8) | f[2 + i];
            start = 10;
        }
        if (len - at < start + size) break;
        const char *payload = (const char *)f + start;
        at += start + size;
        if (opcode == TEXT) {
            on_text(c, payload, size);
        } else if (opcode == PING) {
            send_frame(c->fd, PONG, payload, size);
        } else if (opcode == CLOSE) {
            return drop(c), -1;
        }
        if (c->phase == GONE) return -1;
    }
    return (long)at;
}

static void on_readable(Conn *c) {
    static char scratch[65536];
    for (;;) {
        ssize_t n = read(c->fd, scratch, sizeof scratch);
        if (n == 0) return drop(c);
        if (n < 0) {
            if (errno == EAGAIN) return;
            if (errno == EINTR) continue;
            return drop(c);
        }
        const char *data = scratch;
        size_t len = (size_t)n;
        if (c->len > 0) {
            /* A partial frame was kept: go on from it. */
            keep(c, scratch, len);
            data = c->buf;
            len = c->len;
        }
        long used = consume(c, data, len);
        if (used < 0) return;
        if (data == c->buf) {
            memmove(c->buf, c->buf + used, len - (size_t)used);
            c->len = len - (size_t)used;
        } else if ((size_t)used < len) {
            keep(c, data + used, len - (size_t)used);
        }
        if ((size_t)n < sizeof scratch) return; /* drained the socket */
    }
}

static void on_writable(Conn *c) {
    int error = 0;
    socklen_t size = sizeof error;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error != 0) return drop(c);
    char request[2048];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     path, host, port, raw ? "" : "Sec-WebSocket-Protocol: ", raw ? "" : protocol,
                     raw ? "" : "\r\n");
    send_all(c->fd, request, (size_t)n);
    c->phase = HANDSHAKE;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_command(void) {
    static char line[256];
    static size_t len;
    ssize_t n = read(STDIN_FILENO, line + len, sizeof line - 1 - len);
    if (n <= 0) exit(0);
    len += (size_t)n;
    char *nl;
    while ((nl = memchr(line, '\n', len)) != NULL) {
        *nl = 0;
        if (strcmp(line, "flush") == 0) {
            for (int i = 0; i < npending; i++) report(i);
            npending = 0;
            printf("flushed\n");
            fflush(stdout);
        } else if (strcmp(line, "close") == 0) {
            exit(0);
        } else if (strncmp(line, "round ", 6) == 0 && strlen(line + 6) == TOKEN_LEN) {
            memcpy(round_token, line + 6, sizeof round_token);
            round_number++;
        }
        size_t used = (size_t)(nl + 1 - line);
        memmove(line, nl + 1, len - used);
        len -= used;
    }
}

/* One line of the file per socket, in order (the JSON of its variables, or
 * of its connection_init payload); NULL for sockets past the file's end. */
static const char **read_lines(const char *file) {
    const char **lines = calloc((size_t)(count ? count : 1), sizeof *lines);
    FILE *in = fopen(file, "r");
    if (in == NULL) die(file);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    for (long i = 0; i < count && (n = getline(&line, &cap, in)) > 0; i++) {
        if (line[n - 1] == '\n') line[n - 1] = 0;
        lines[i] = strdup(line);
    }
    free(line);
    fclose(in);
    return lines;
}

/* ws://HOST:PORT/PATH, split in place. */
static void parse_url(char *url) {
    if (strncmp(url, "ws://", 5) != 0) {
        fprintf(stderr, "not a ws:// url: %s\n", url);
        exit(2);
    }
    char *rest = url + 5;
    char *slash = strchr(rest, '/');
    static char root[] = "/";
    path = slash ? strdup(slash) : root;
    if (slash) *slash = 0;
    char *colon = strrchr(rest, ':');
    if (colon == NULL) {
        fprintf(stderr, "no port in url\n");
        exit(2);
    }
    *colon = 0;
    host = rest;
    port = colon + 1;
}

int main(int argc, char **argv) {
    const char *inits = NULL;
    for (int opt; (opt = getopt(argc, argv, "i:e")) != -1;) {
        if (opt == 'i') inits = optarg;
        else if (opt == 'e') each = 1;
        else return 2;
    }
    argc -= optind - 1;
    argv += optind - 1;
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: fanout_client [-i INITS] [-e] URL PROTOCOL COUNT QUERY [VARIABLES]\n");
        return 2;
    }
    parse_url(argv[1]);
    protocol = argv[2];
    raw = strcmp(protocol, "raw") == 0;
    count = atol(argv[3]);
    /* The query goes inside a JSON string: escape what JSON requires. */
    char *escaped = malloc(strlen(argv[4]) * 6 + 1), *out = escaped;
    for (const char *q = argv[4]; *q; q++) {
        if (*q == '"' || *q == '\\') *out++ = '\\';
        if ((unsigned char)*q < 0x20) {
            out += sprintf(out, "\\u%04x", *q);
            continue;
        }
        *out++ = *q;
    }
    *out = 0;
    query = escaped;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (getaddrinfo(host, port, &hints, &address) != 0) die("getaddrinfo");
    conns = calloc((size_t)(count ? count : 1), sizeof *conns);
    const char **variables = argc == 6 ? read_lines(argv[5]) : NULL;
    const char **init = inits != NULL ? read_lines(inits) : NULL;
    for (long i = 0; i < count; i++) {
        conns[i].variables = variables ? variables[i] : NULL;
        conns[i].init = init ? init[i] : NULL;
    }
    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1");
    struct epoll_event in = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &in);
    if (count == 0) settled();
    for (long i = 0; i < IN_FLIGHT && i < count; i++) connect_next();
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epfd, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            Conn *c = events[i].data.ptr;
            if (c == NULL) on_command();
            else if (c->phase == CONNECTING) on_writable(c);
            else if (c->phase != GONE) on_readable(c);
        }
    }
}
