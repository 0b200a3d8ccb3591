/* A JSON scanner that validates a whole ping but builds Python objects only
 * for the values at the paths the configuration needs.
 *
 * It is the fast tier of pings.PingRules.leaves, and it answers exactly like
 * the generic tier (json.loads, then a walk of plain dicts) or not at all:
 * extract() returns the list of leaf values, None when the line is not a JSON
 * object (malformed), or False when the line holds something this scanner
 * leaves to the generic tier: an object or array at a needed path, an integer
 * of more than 18 digits, a float that overflows, a surrogate escape, an
 * escaped key where a needed key is looked for, nesting deeper than
 * MAX_DEPTH. A line that is not UTF-8 is malformed: bytes above 0x7F can
 * only be inside strings, where they are checked as Python's strict UTF-8
 * decoder would.
 *
 * JSON grammar: RFC 8259 as Python's json module reads it (no NaN or
 * Infinity: those are rejected by the rules as well). Duplicate keys: the
 * last one wins, so a needed subtree met again is emptied before it is read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 512
#define MAX_NUMBER 64
/* The string cache: a direct-mapped table of recent short ASCII leaf strings.
 * Dimension values repeat from ping to ping; handing out the same str object
 * saves making one per ping, and its hash, once computed, is kept with it. */
#define CACHE_SLOTS 4096 /* a power of two */
#define CACHE_MAX_LEN 64

typedef enum { SCAN_OK = 0, SCAN_MALFORMED = 1, SCAN_FALLBACK = 2, SCAN_ERROR = 3 } Status;

typedef struct Trie Trie;

/* One key of an object on a needed path. */
typedef struct {
    char *key;
    Py_ssize_t key_len;
    Trie *child;          /* NULL: the key's value is a leaf */
    Py_ssize_t *slots;    /* a leaf: the slots it fills; else every slot below */
    Py_ssize_t nslots;
} Entry;

struct Trie {
    Py_ssize_t n;
    Entry *entries;
};

/* Where a slot's value is in the line, as raw JSON text; start NULL: missing. */
typedef struct {
    const unsigned char *start;
    Py_ssize_t len;
} Span;

typedef struct {
    PyObject_HEAD
    Trie *root;
    Py_ssize_t nslots;
    PyObject **cache;      /* CACHE_SLOTS strong references or NULLs */
    Py_ssize_t *signed_slots; /* the slots whose raw text makes the signature */
    Py_ssize_t nsigned;
    Span *spans;           /* per slot, for the signature; reset by each extract */
} Scanner;

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    PyObject *out;
    PyObject **cache;
    Span *spans;
} State;

/* Bytes that end a run of plain string content: quote, backslash, controls,
 * and the first byte of a non-ASCII character. */
static unsigned char string_stop[256];

/* -- the trie, built from the spec that pings.py passes ------------------ */

static void trie_free(Trie *t)
{
    if (t == NULL)
        return;
    for (Py_ssize_t i = 0; i < t->n; i++) {
        PyMem_Free(t->entries[i].key);
        PyMem_Free(t->entries[i].slots);
        trie_free(t->entries[i].child);
    }
    PyMem_Free(t->entries);
    PyMem_Free(t);
}

/* spec: a tuple of (key: bytes, slots: tuple[int, ...], child: spec | None). */
static Trie *trie_build(PyObject *spec, Py_ssize_t nslots)
{
    if (!PyTuple_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "a trie spec is a tuple of (key, slots, child)");
        return NULL;
    }
    Trie *t = PyMem_Calloc(1, sizeof(Trie));
    if (t == NULL)
        return (Trie *)PyErr_NoMemory();
    t->n = PyTuple_GET_SIZE(spec);
    t->entries = PyMem_Calloc(t->n ? t->n : 1, sizeof(Entry));
    if (t->entries == NULL) {
        PyMem_Free(t);
        return (Trie *)PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < t->n; i++) {
        Entry *e = &t->entries[i];
        PyObject *key, *slots, *child;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(spec, i), "SO!O", &key, &PyTuple_Type, &slots, &child))
            goto fail;
        e->key_len = PyBytes_GET_SIZE(key);
        e->key = PyMem_Malloc(e->key_len + 1);
        e->nslots = PyTuple_GET_SIZE(slots);
        e->slots = PyMem_Malloc((e->nslots ? e->nslots : 1) * sizeof(Py_ssize_t));
        if (e->key == NULL || e->slots == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        memcpy(e->key, PyBytes_AS_STRING(key), e->key_len + 1);
        for (Py_ssize_t j = 0; j < e->nslots; j++) {
            Py_ssize_t slot = PyLong_AsSsize_t(PyTuple_GET_ITEM(slots, j));
            if (slot == -1 && PyErr_Occurred())
                goto fail;
            if (slot < 0 || slot >= nslots) {
                PyErr_SetString(PyExc_ValueError, "slot out of range");
                goto fail;
            }
            e->slots[j] = slot;
        }
        if (child != Py_None && (e->child = trie_build(child, nslots)) == NULL)
            goto fail;
    }
    return t;
fail:
    trie_free(t);
    return NULL;
}

/* -- scanning ------------------------------------------------------------ */

static inline void skip_ws(State *s)
{
    /* Compact JSON has none: one test on the common path. */
    if (s->p < s->end && *s->p <= ' ') {
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
            s->p++;
    }
}

static inline int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* After a backslash: the escape at s->p. Sets *code to the character. */
static Status read_escape(State *s, unsigned int *code)
{
    if (s->p >= s->end)
        return SCAN_MALFORMED;
    unsigned char c = *s->p++;
    switch (c) {
    case '"': *code = '"'; return SCAN_OK;
    case '\\': *code = '\\'; return SCAN_OK;
    case '/': *code = '/'; return SCAN_OK;
    case 'b': *code = '\b'; return SCAN_OK;
    case 'f': *code = '\f'; return SCAN_OK;
    case 'n': *code = '\n'; return SCAN_OK;
    case 'r': *code = '\r'; return SCAN_OK;
    case 't': *code = '\t'; return SCAN_OK;
    case 'u':
        break;
    default:
        return SCAN_MALFORMED;
    }
    if (s->end - s->p < 4)
        return SCAN_MALFORMED;
    unsigned int value = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(s->p[i]);
        if (h < 0)
            return SCAN_MALFORMED;
        value = value * 16 + h;
    }
    s->p += 4;
    /* Surrogates, paired or not, are the generic tier's to judge. */
    if (value >= 0xD800 && value <= 0xDFFF)
        return SCAN_FALLBACK;
    *code = value;
    return SCAN_OK;
}

/* The end of a run of plain string bytes from p: 8 bytes at a time while no
 * quote, backslash, control or non-ASCII byte is among them. */
static inline const unsigned char *plain_run(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__) && defined(__GNUC__)
    /* 16 bytes at a time. Compared as signed bytes, those from 0x80 up are
     * negative: "below 0x20" finds controls and non-ASCII bytes at once. */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        __m128i stops = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                                     _mm_cmplt_epi8(x, space));
        int mask = _mm_movemask_epi8(stops);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
        /* A zero byte in quote/backslash, or a byte below 0x20 or above 0x7F in x. */
        uint64_t hit = (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | ((x - ones * 0x20) & ~x) | x) & highs;
        if (hit)
            /* The lowest flag marks the first such byte (little-endian load;
             * a borrow can only raise false flags above a true one). */
            return p + (__builtin_ctzll(hit) >> 3);
        p += 8;
    }
#endif
    while (p < end && !string_stop[*p])
        p++;
    return p;
}

/* The string scanner is inlined in its callers' loops; the UTF-8 check,
 * rarely needed, stays out of them. */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define COLD __attribute__((noinline, cold))
#else
#define ALWAYS_INLINE inline
#define COLD
#endif

/* The length of the UTF-8 character of two to four bytes at p, or 0 when
 * those bytes are not one: strict UTF-8 as Python decodes it (no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static COLD Py_ssize_t utf8_length(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    Py_ssize_t n;
    unsigned char low = 0x80, high = 0xBF; /* the range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            low = 0xA0; /* overlong below */
        else if (c == 0xED)
            high = 0x9F; /* surrogates above */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            low = 0x90;
        else if (c == 0xF4)
            high = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* a continuation byte, an overlong lead or F5-FF */
    }
    if (end - p < n || p[1] < low || p[1] > high)
        return 0;
    for (Py_ssize_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

/* A string, s->p just after its opening quote. Sets [*start, *stop) to its
 * raw content and *escaped when it holds a backslash. */
static ALWAYS_INLINE Status scan_string(State *s, const unsigned char **start, const unsigned char **stop, int *escaped)
{
    *start = s->p;
    *escaped = 0;
    for (;;) {
        s->p = plain_run(s->p, s->end);
        if (s->p >= s->end)
            return SCAN_MALFORMED;
        unsigned char c = *s->p;
        if (c == '"') {
            *stop = s->p++;
            return SCAN_OK;
        }
        if (c >= 0x80) {
            Py_ssize_t n = utf8_length(s->p, s->end);
            if (n == 0)
                return SCAN_MALFORMED; /* not UTF-8 */
            s->p += n;
            continue;
        }
        if (c < 0x20)
            return SCAN_MALFORMED; /* a raw control character */
        s->p++;                    /* a backslash */
        unsigned int code;
        Status st = read_escape(s, &code);
        if (st != SCAN_OK)
            return st;
        *escaped = 1;
    }
}

/* The Python str of a string's raw content. */
static PyObject *decode_string(const unsigned char *start, const unsigned char *stop, int escaped)
{
    if (!escaped)
        return PyUnicode_DecodeUTF8((const char *)start, stop - start, "strict");
    /* Unescaped text is never longer than the raw text: \uXXXX (6 bytes)
     * becomes at most 3 bytes of UTF-8 (surrogates never get here). */
    char *buffer = PyMem_Malloc(stop - start + 1);
    if (buffer == NULL)
        return PyErr_NoMemory();
    char *q = buffer;
    State s = {start, stop, NULL, NULL};
    while (s.p < s.end) {
        unsigned char c = *s.p++;
        if (c != '\\') {
            *q++ = (char)c;
            continue;
        }
        unsigned int code = 0;
        read_escape(&s, &code); /* already validated by scan_string */
        if (code < 0x80) {
            *q++ = (char)code;
        } else if (code < 0x800) {
            *q++ = (char)(0xC0 | (code >> 6));
            *q++ = (char)(0x80 | (code & 0x3F));
        } else {
            *q++ = (char)(0xE0 | (code >> 12));
            *q++ = (char)(0x80 | ((code >> 6) & 0x3F));
            *q++ = (char)(0x80 | (code & 0x3F));
        }
    }
    PyObject *text = PyUnicode_DecodeUTF8(buffer, q - buffer, "strict");
    PyMem_Free(buffer);
    return text;
}

/* decode_string for a leaf, through the cache when the string is short,
 * unescaped and ASCII (the str is then compact ASCII: its data is the raw text). */
static PyObject *leaf_string(PyObject **cache, const unsigned char *start, const unsigned char *stop, int escaped)
{
    Py_ssize_t len = stop - start;
    if (escaped || len > CACHE_MAX_LEN)
        return decode_string(start, stop, escaped);
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (const unsigned char *q = start; q < stop; q++)
        h = (h ^ *q) * 1099511628211ULL;
    PyObject **slot = &cache[(h ^ (h >> 32)) & (CACHE_SLOTS - 1)];
    PyObject *hit = *slot;
    if (hit != NULL && PyUnicode_GET_LENGTH(hit) == len && memcmp(PyUnicode_DATA(hit), start, len) == 0)
        return Py_NewRef(hit);
    PyObject *text = decode_string(start, stop, 0);
    if (text != NULL && PyUnicode_IS_ASCII(text)) {
        Py_XSETREF(*slot, Py_NewRef(text));
    }
    return text;
}

/* A number's text, validated; *is_int when it has no fraction nor exponent. */
static Status scan_number(State *s, int *is_int)
{
    const unsigned char *p = s->p, *end = s->end;
    *is_int = 1;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return SCAN_MALFORMED;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return SCAN_MALFORMED;
    }
    if (p < end && *p == '.') {
        *is_int = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return SCAN_MALFORMED;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return SCAN_MALFORMED;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    s->p = p;
    return SCAN_OK;
}

/* The length of the literal at p, which starts with 't', 'f' or 'n': 4 for
 * true or null, 5 for false; 0 when the word is not all there. */
static inline Py_ssize_t literal_length(const unsigned char *p, const unsigned char *end)
{
    const char *word = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
    Py_ssize_t len = *p == 'f' ? 5 : 4;
    return end - p >= len && memcmp(p, word, len) == 0 ? len : 0;
}

static Status scan_object(State *s, const Trie *trie, int depth);

static inline const unsigned char *skip_ws_at(const unsigned char *p, const unsigned char *end)
{
    while (p < end && *p <= ' ' && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Any value, validated and not kept; s->p at its first byte. Iterative, with
 * the open containers on a stack: most of a ping's bytes go through here. */
static Status skip_value(State *s, int depth)
{
    char stack[MAX_DEPTH + 1]; /* '{' or '[' per open container */
    int top = 0, is_int, escaped;
    const unsigned char *p = s->p, *end = s->end, *start, *stop;
    Status st;

value:
    if (p >= end)
        return SCAN_MALFORMED;
    switch (*p) {
    case '{':
    case '[':
        if (depth + top >= MAX_DEPTH)
            return SCAN_FALLBACK;
        stack[top++] = (char)*p++;
        p = skip_ws_at(p, end);
        if (p < end && *p == (stack[top - 1] == '{' ? '}' : ']')) {
            p++;
            top--;
            goto after;
        }
        if (stack[top - 1] == '{')
            goto key;
        goto value;
    case '"':
        s->p = p + 1;
        if ((st = scan_string(s, &start, &stop, &escaped)) != SCAN_OK)
            return st;
        p = s->p;
        goto after;
    case 't':
    case 'f':
    case 'n': {
        Py_ssize_t len = literal_length(p, end);
        if (len == 0)
            return SCAN_MALFORMED;
        p += len;
        goto after;
    }
    default:
        start = p;
        if (*p >= '1' && *p <= '9') { /* the common case: a plain integer */
            do
                p++;
            while (p < end && *p >= '0' && *p <= '9');
            if (p >= end || (*p != '.' && *p != 'e' && *p != 'E'))
                goto after;
        }
        /* A sign, a leading zero, a fraction or an exponent: the full grammar. */
        s->p = start;
        if ((st = scan_number(s, &is_int)) != SCAN_OK)
            return st;
        p = s->p;
        goto after;
    }

key:
    if (p >= end || *p != '"')
        return SCAN_MALFORMED;
    s->p = p + 1;
    if ((st = scan_string(s, &start, &stop, &escaped)) != SCAN_OK)
        return st;
    p = skip_ws_at(s->p, end);
    if (p >= end || *p != ':')
        return SCAN_MALFORMED;
    p = skip_ws_at(p + 1, end);
    goto value;

after:
    if (top == 0) {
        s->p = p;
        return SCAN_OK;
    }
    p = skip_ws_at(p, end);
    if (p >= end)
        return SCAN_MALFORMED;
    if (*p == ',') {
        p = skip_ws_at(p + 1, end);
        if (stack[top - 1] == '{')
            goto key;
        goto value;
    }
    if (*p == (stack[top - 1] == '{' ? '}' : ']')) {
        p++;
        top--;
        goto after;
    }
    return SCAN_MALFORMED;
}

/* The value at a needed leaf, as the generic tier would decode it; with
 * value NULL, the leaf is only checked (the same statuses, no object made). */
static Status read_leaf(State *s, PyObject **value)
{
    if (s->p >= s->end)
        return SCAN_MALFORMED;
    const unsigned char *start = s->p, *stop;
    int flag;
    Status st;
    switch (*s->p) {
    case '{':
    case '[':
        return SCAN_FALLBACK; /* a container where a scalar is expected */
    case '"':
        s->p++;
        if ((st = scan_string(s, &start, &stop, &flag)) != SCAN_OK)
            return st;
        if (value == NULL)
            return SCAN_OK;
        *value = leaf_string(s->cache, start, stop, flag);
        return *value ? SCAN_OK : SCAN_ERROR;
    case 't':
    case 'f':
    case 'n': {
        Py_ssize_t len = literal_length(s->p, s->end);
        if (len == 0)
            return SCAN_MALFORMED;
        if (value != NULL)
            *value = Py_NewRef(*s->p == 't' ? Py_True : *s->p == 'f' ? Py_False : Py_None);
        s->p += len;
        return SCAN_OK;
    }
    }
    if ((st = scan_number(s, &flag)) != SCAN_OK)
        return st;
    Py_ssize_t len = s->p - start;
    if (len >= MAX_NUMBER)
        return SCAN_FALLBACK;
    char text[MAX_NUMBER];
    memcpy(text, start, len);
    text[len] = '\0';
    if (flag) {
        if (len > 18)
            return SCAN_FALLBACK; /* may not fit in 64 bits: Python's int() decides */
        if (value == NULL)
            return SCAN_OK;
        *value = PyLong_FromLongLong(strtoll(text, NULL, 10));
        return *value ? SCAN_OK : SCAN_ERROR;
    }
    /* The same conversion as float(text), so the same double to the last bit. */
    double x = PyOS_string_to_double(text, NULL, NULL);
    if (x == -1.0 && PyErr_Occurred())
        return SCAN_ERROR;
    if (!isfinite(x))
        return SCAN_FALLBACK;
    if (value == NULL)
        return SCAN_OK;
    *value = PyFloat_FromDouble(x);
    return *value ? SCAN_OK : SCAN_ERROR;
}

static void clear_slots(State *s, const Entry *e)
{
    for (Py_ssize_t i = 0; i < e->nslots; i++) {
        if (s->out != NULL) {
            PyObject *old = PyList_GET_ITEM(s->out, e->slots[i]);
            PyList_SET_ITEM(s->out, e->slots[i], Py_NewRef(Py_None));
            Py_DECREF(old);
        }
        s->spans[e->slots[i]].start = NULL;
    }
}

static const Entry *find_entry(const Trie *trie, const unsigned char *key, Py_ssize_t len)
{
    for (Py_ssize_t i = 0; i < trie->n; i++) {
        const Entry *e = &trie->entries[i];
        if (e->key_len == len && (len == 0 || e->key[0] == key[0]) && memcmp(e->key, key, len) == 0)
            return e;
    }
    return NULL;
}

/* An object, s->p at its '{'. With a trie, the needed keys are read into
 * s->out; without, the object is only validated. */
static Status scan_object(State *s, const Trie *trie, int depth)
{
    if (depth > MAX_DEPTH)
        return SCAN_FALLBACK;
    s->p++; /* { */
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return SCAN_OK;
    }
    for (;;) {
        if (s->p >= s->end || *s->p != '"')
            return SCAN_MALFORMED;
        s->p++;
        const unsigned char *key, *key_end;
        int escaped;
        Status st = scan_string(s, &key, &key_end, &escaped);
        if (st != SCAN_OK)
            return st;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return SCAN_MALFORMED;
        s->p++;
        skip_ws(s);

        const Entry *e = NULL;
        if (trie != NULL) {
            if (escaped)
                return SCAN_FALLBACK; /* it might spell a needed key */
            e = find_entry(trie, key, key_end - key);
        }
        if (e == NULL) {
            st = skip_value(s, depth + 1);
        } else {
            clear_slots(s, e); /* the last of duplicate keys wins */
            if (e->child != NULL) {
                /* Below a value that is not an object the paths are missing. */
                st = (s->p < s->end && *s->p == '{') ? scan_object(s, e->child, depth + 1)
                                                     : skip_value(s, depth + 1);
            } else {
                PyObject *value = NULL;
                const unsigned char *token = s->p;
                st = read_leaf(s, s->out != NULL ? &value : NULL);
                if (st == SCAN_OK) {
                    for (Py_ssize_t i = 0; i < e->nslots; i++) {
                        if (s->out != NULL) {
                            PyObject *old = PyList_GET_ITEM(s->out, e->slots[i]);
                            PyList_SET_ITEM(s->out, e->slots[i], Py_NewRef(value));
                            Py_DECREF(old);
                        }
                        s->spans[e->slots[i]] = (Span){token, s->p - token};
                    }
                }
                Py_XDECREF(value);
            }
        }
        if (st != SCAN_OK)
            return st;
        skip_ws(s);
        if (s->p >= s->end)
            return SCAN_MALFORMED;
        if (*s->p == '}') {
            s->p++;
            return SCAN_OK;
        }
        if (*s->p != ',')
            return SCAN_MALFORMED;
        s->p++;
        skip_ws(s);
    }
}

/* -- the Python type ------------------------------------------------------ */

static PyObject *Scanner_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"spec", "slots", "signature", NULL};
    PyObject *spec, *signature = NULL;
    Py_ssize_t nslots;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "On|O!", names, &spec, &nslots, &PyTuple_Type, &signature))
        return NULL;
    if (nslots < 0) {
        PyErr_SetString(PyExc_ValueError, "slots must be >= 0");
        return NULL;
    }
    Scanner *self = (Scanner *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->nslots = nslots;
    self->cache = PyMem_Calloc(CACHE_SLOTS, sizeof(PyObject *));
    if (self->cache == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->root = trie_build(spec, nslots);
    if (self->root == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->nsigned = signature ? PyTuple_GET_SIZE(signature) : -1;
    self->spans = PyMem_Calloc(nslots ? nslots : 1, sizeof(Span));
    self->signed_slots = PyMem_Calloc(self->nsigned > 0 ? self->nsigned : 1, sizeof(Py_ssize_t));
    if (self->spans == NULL || self->signed_slots == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < self->nsigned; i++) {
        Py_ssize_t slot = PyLong_AsSsize_t(PyTuple_GET_ITEM(signature, i));
        if (slot == -1 && PyErr_Occurred()) {
            Py_DECREF(self);
            return NULL;
        }
        if (slot < 0 || slot >= nslots) {
            PyErr_SetString(PyExc_ValueError, "signature slot out of range");
            Py_DECREF(self);
            return NULL;
        }
        self->signed_slots[i] = slot;
    }
    return (PyObject *)self;
}

static void Scanner_dealloc(Scanner *self)
{
    if (self->cache != NULL) {
        for (Py_ssize_t i = 0; i < CACHE_SLOTS; i++)
            Py_XDECREF(self->cache[i]);
        PyMem_Free(self->cache);
    }
    trie_free(self->root);
    PyMem_Free(self->spans);
    PyMem_Free(self->signed_slots);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The raw text of the signed slots, each followed by a NUL; a missing one is
 * "\x01". Raw JSON values hold no byte below 0x20, so no two different
 * lists of values give the same bytes, and equal bytes decode to equal values. */
static PyObject *make_signature(const Scanner *self)
{
    Py_ssize_t size = 0;
    for (Py_ssize_t i = 0; i < self->nsigned; i++) {
        const Span *span = &self->spans[self->signed_slots[i]];
        size += (span->start ? span->len : 1) + 1;
    }
    PyObject *signature = PyBytes_FromStringAndSize(NULL, size);
    if (signature == NULL)
        return NULL;
    char *q = PyBytes_AS_STRING(signature);
    for (Py_ssize_t i = 0; i < self->nsigned; i++) {
        const Span *span = &self->spans[self->signed_slots[i]];
        if (span->start) {
            memcpy(q, span->start, span->len);
            q += span->len;
        } else {
            *q++ = 1;
        }
        *q++ = 0;
    }
    return signature;
}

/* Scan one line: the leaves into out (a list of nslots Nones), or with out
 * NULL only their spans (self->spans). */
static Status scan_line(Scanner *self, const Py_buffer *view, PyObject *out)
{
    memset(self->spans, 0, self->nslots * sizeof(Span));
    State s = {(const unsigned char *)view->buf, (const unsigned char *)view->buf + view->len, out, self->cache, self->spans};
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return SCAN_MALFORMED; /* empty, or a root that is not an object */
    Status st = scan_object(&s, self->root, 0);
    if (st == SCAN_OK) {
        skip_ws(&s);
        if (s.p != s.end)
            st = SCAN_MALFORMED; /* text after the object */
    }
    return st;
}

static PyObject *Scanner_extract(Scanner *self, PyObject *line)
{
    Py_buffer view;
    if (PyObject_GetBuffer(line, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out = PyList_New(self->nslots + (self->nsigned >= 0));
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(out); i++)
        PyList_SET_ITEM(out, i, Py_NewRef(Py_None));
    Status st = scan_line(self, &view, out);
    if (st == SCAN_OK && self->nsigned >= 0) {
        PyObject *signature = make_signature(self);
        if (signature == NULL)
            st = SCAN_ERROR;
        else {
            Py_DECREF(PyList_GET_ITEM(out, self->nslots)); /* None */
            PyList_SET_ITEM(out, self->nslots, signature);
        }
    }
    PyBuffer_Release(&view);
    if (st == SCAN_OK)
        return out;
    Py_DECREF(out);
    if (st == SCAN_ERROR)
        return NULL;
    return Py_NewRef(st == SCAN_MALFORMED ? Py_None : Py_False);
}

static PyMethodDef Scanner_methods[] = {
    {"extract", (PyCFunction)Scanner_extract, METH_O,
     "extract(line) -> the leaf values (list), None if malformed, False to ask the generic tier.\n\n"
     "With a signature, the list ends with one more item: the bytes of the signed slots' raw text."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "crash_aggregates._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scanner(spec, slots, signature=None): reads the values at some paths of a JSON object",
    .tp_new = Scanner_new,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

/* -- the per-ping rules, compiled ------------------------------------------
 *
 * Summer.add(lines, aggregates, ignored, fallback) sums a batch of lines as
 * aggregate.DayAggregate.add_lines does with pings.PingRules.evaluate, with
 * no Python object per leaf and no bytecode per ping. SPEC's rules are
 * defined in pings.py; what runs here is the per-ping remainder of them,
 * checked against that definition by tests/test_compiled.py on every table
 * case, the fixtures, the seed set and a mutated corpus:
 *
 * - the rules on the signed leaves (doc type, content crash, submission
 *   date, build id, dimension values) are not here: their answer comes from
 *   PingRules' memory of signatures (``known``), which pings.py fills;
 * - the activity date (SPEC 3, PingRules.activity_date): the first of the
 *   primary date and creationDate that is a string whose first ten
 *   characters are a valid YYYY-MM-DD, clamped into [D - 7, D];
 * - the subsession length and the usage hours (SPEC 5, as_double);
 * - the count histograms (histogram_count), the stats template of the doc
 *   type (built by PingRules), and the sums, added in line order.
 *
 * Any line this code is not sure of (malformed or odd, a signature not
 * known yet, a date written with escapes) goes to ``fallback(line)``, the
 * Python path, in its turn, so the sums are added in the same order. */

#define ACTIVITY_DAYS 8 /* D - 7 .. D (pings.MAX_LATENESS_DAYS + 1) */
#define DATE_UNUSABLE (-1)
#define DATE_ASK_PYTHON (-2)

typedef struct {
    PyObject_HEAD
    Scanner *scanner;
    PyObject *known;                      /* dict: signature -> Outcome | (is_crash, build_id_ok, dims) */
    PyObject *activity[ACTIVITY_DAYS];    /* the activity date strings, D - 7 first */
    long day;                             /* D's proleptic ordinal (date.toordinal) */
    Py_ssize_t crash_date, subsession_start, creation_date, subsession_length; /* slots */
    Py_ssize_t ncolumns;
    double *templates;                    /* main's columns, then crash's */
    Py_ssize_t nusage, ncounts;
    Py_ssize_t *usage;                    /* per usage column: column, squared */
    Py_ssize_t *counts;                   /* per count column: slot, column, squared */
    PyObject *invalid_activity[2], *invalid_build_id[2], *invalid_length; /* Outcomes, [is_crash] */
} Summer;

static int is_leap(long y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* date(y, m, d).toordinal() */
static long ordinal(long y, int m, int d)
{
    static const int before[13] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    long py = y - 1;
    return py * 365 + py / 4 - py / 100 + py / 400 + before[m] + (m > 2 && is_leap(y)) + d;
}

/* A candidate date's leaf, as pings.parse_iso_date(candidate[:10]) sees it:
 * its ordinal, DATE_UNUSABLE (not a string, or not a valid YYYY-MM-DD), or
 * DATE_ASK_PYTHON when its first ten characters are not plain ASCII text. */
static long span_date(Span span)
{
    if (span.start == NULL || span.start[0] != '"')
        return DATE_UNUSABLE;
    const unsigned char *p = span.start + 1;
    Py_ssize_t len = span.len - 2; /* the raw content, quotes off */
    for (Py_ssize_t i = 0; i < len && i < 10; i++)
        if (p[i] == '\\' || p[i] >= 0x80)
            return DATE_ASK_PYTHON;
    if (len < 10)
        return DATE_UNUSABLE;
    for (int i = 0; i < 10; i++) {
        int hyphen = i == 4 || i == 7;
        if (hyphen ? p[i] != '-' : (p[i] < '0' || p[i] > '9'))
            return DATE_UNUSABLE;
    }
    long y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    int m = (p[5] - '0') * 10 + (p[6] - '0'), d = (p[8] - '0') * 10 + (p[9] - '0');
    static const int days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > days[m] + (m == 2 && is_leap(y)))
        return DATE_UNUSABLE;
    return ordinal(y, m, d);
}

/* as_double of a leaf: 1 and *x for a JSON number, 0 for anything else.
 * The scanner has checked the number: an integer of at most 18 characters,
 * or a float that is finite. */
static int span_number(Span span, double *x)
{
    if (span.start == NULL)
        return 0;
    unsigned char c = span.start[0];
    if (c != '-' && (c < '0' || c > '9'))
        return 0;
    char text[MAX_NUMBER];
    memcpy(text, span.start, span.len);
    text[span.len] = '\0';
    int is_int = memchr(text, '.', span.len) == NULL && memchr(text, 'e', span.len) == NULL &&
                 memchr(text, 'E', span.len) == NULL;
    if (is_int)
        *x = (double)strtoll(text, NULL, 10); /* float(int): correctly rounded either way */
    else
        *x = PyOS_string_to_double(text, NULL, NULL); /* what float(text) gives */
    return 1;
}

static int count_ignored(PyObject *ignored, PyObject *outcome)
{
    PyObject *n = PyDict_GetItemWithError(ignored, outcome);
    if (n == NULL && PyErr_Occurred())
        return -1;
    PyObject *more = PyLong_FromSsize_t((n ? PyLong_AsSsize_t(n) : 0) + 1);
    if (more == NULL)
        return -1;
    int rc = PyDict_SetItem(ignored, outcome, more);
    Py_DECREF(more);
    return rc;
}

/* Add values to the sums of key in aggregates (a new list of floats if none). */
static int add_sums(PyObject *aggregates, PyObject *key, const double *values, Py_ssize_t n)
{
    PyObject *sums = PyDict_GetItemWithError(aggregates, key);
    if (sums == NULL) {
        if (PyErr_Occurred())
            return -1;
        sums = PyList_New(n);
        if (sums == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x = PyFloat_FromDouble(values[i]);
            if (x == NULL) {
                Py_DECREF(sums);
                return -1;
            }
            PyList_SET_ITEM(sums, i, x);
        }
        int rc = PyDict_SetItem(aggregates, key, sums);
        Py_DECREF(sums);
        return rc;
    }
    if (!PyList_CheckExact(sums) || PyList_GET_SIZE(sums) != n) {
        PyErr_SetString(PyExc_TypeError, "an aggregate's sums are not a list of the stat columns");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *old = PyList_GET_ITEM(sums, i);
        if (!PyFloat_CheckExact(old)) {
            PyErr_SetString(PyExc_TypeError, "an aggregate's sums are not floats");
            return -1;
        }
        double sum = PyFloat_AS_DOUBLE(old) + values[i];
        if (Py_REFCNT(old) == 1) {
            /* Only this list holds the float: it is updated where it is. */
            ((PyFloatObject *)old)->ob_fval = sum;
            continue;
        }
        PyObject *x = PyFloat_FromDouble(sum);
        if (x == NULL)
            return -1;
        PyList_SET_ITEM(sums, i, x);
        Py_DECREF(old);
    }
    return 0;
}

typedef enum { LINE_SUMMED, LINE_IGNORED, LINE_TO_PYTHON, LINE_ERROR } LineResult;

/* One line, scanned: its outcome summed or counted, or LINE_TO_PYTHON. */
static LineResult sum_line(Summer *self, PyObject *aggregates, PyObject *ignored, double *values, int *crash)
{
    Scanner *scanner = self->scanner;
    PyObject *signature = make_signature(scanner);
    if (signature == NULL)
        return LINE_ERROR;
    PyObject *known = PyDict_GetItemWithError(self->known, signature);
    Py_DECREF(signature);
    if (known == NULL)
        return PyErr_Occurred() ? LINE_ERROR : LINE_TO_PYTHON; /* pings.py works a new signature out */
    if (!PyTuple_CheckExact(known)) /* an Outcome: ignored by the signed rules */
        return count_ignored(ignored, known) < 0 ? LINE_ERROR : LINE_IGNORED;
    if (PyTuple_GET_SIZE(known) != 3)
        return LINE_TO_PYTHON;
    int is_crash = PyTuple_GET_ITEM(known, 0) == Py_True;
    int build_id_ok = PyTuple_GET_ITEM(known, 1) == Py_True;
    PyObject *dims = PyTuple_GET_ITEM(known, 2);
    *crash = is_crash;

    /* SPEC 3: the activity date. */
    const Span *spans = scanner->spans;
    long date = span_date(spans[is_crash ? self->crash_date : self->subsession_start]);
    if (date == DATE_UNUSABLE)
        date = span_date(spans[self->creation_date]);
    if (date == DATE_ASK_PYTHON)
        return LINE_TO_PYTHON;
    if (date == DATE_UNUSABLE)
        return count_ignored(ignored, self->invalid_activity[is_crash]) < 0 ? LINE_ERROR : LINE_IGNORED;
    long offset = date - (self->day - (ACTIVITY_DAYS - 1));
    offset = offset < 0 ? 0 : offset > ACTIVITY_DAYS - 1 ? ACTIVITY_DAYS - 1 : offset;
    if (!build_id_ok)
        return count_ignored(ignored, self->invalid_build_id[is_crash]) < 0 ? LINE_ERROR : LINE_IGNORED;

    /* SPEC 5: usage hours from the subsession length (main pings). */
    double usage = 0.0;
    if (!is_crash) {
        double length;
        if (!span_number(spans[self->subsession_length], &length) || !isfinite(length))
            return count_ignored(ignored, self->invalid_length) < 0 ? LINE_ERROR : LINE_IGNORED;
        usage = length > 0 ? (length / 3600.0 < 25.0 ? length / 3600.0 : 25.0) : 0.0;
    }
    memcpy(values, self->templates + (is_crash ? self->ncolumns : 0), self->ncolumns * sizeof(double));
    if (usage != 0.0) {
        for (Py_ssize_t i = 0; i < self->nusage; i++) {
            Py_ssize_t column = self->usage[2 * i];
            values[column] = usage;
            if (self->usage[2 * i + 1])
                values[column + 1] = usage * usage;
        }
    }
    for (Py_ssize_t i = 0; i < self->ncounts; i++) {
        const Py_ssize_t *c = &self->counts[3 * i];
        double x; /* histogram_count: missing, null, not a number, negative -> 0 (the template's value) */
        if (!span_number(spans[c[0]], &x) || !isfinite(x) || x <= 0)
            x = 0.0;
        values[c[1]] = x;
        if (c[2])
            values[c[1] + 1] = x * x;
    }
    PyObject *key = PyTuple_Pack(2, self->activity[offset], dims);
    if (key == NULL)
        return LINE_ERROR;
    int rc = add_sums(aggregates, key, values, self->ncolumns);
    Py_DECREF(key);
    return rc < 0 ? LINE_ERROR : LINE_SUMMED;
}

static PyObject *Summer_add(Summer *self, PyObject *args)
{
    PyObject *lines, *aggregates, *ignored, *fallback;
    if (!PyArg_ParseTuple(args, "O!O!O!O", &PyList_Type, &lines, &PyDict_Type, &aggregates, &PyDict_Type, &ignored,
                          &fallback))
        return NULL;
    Py_ssize_t processed[2] = {0, 0};
    double *values = PyMem_Malloc((self->ncolumns ? self->ncolumns : 1) * sizeof(double));
    if (values == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(lines); i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        Py_buffer view;
        if (PyObject_GetBuffer(line, &view, PyBUF_SIMPLE) < 0)
            goto error;
        int crash = 0;
        LineResult result = LINE_TO_PYTHON;
        if (scan_line(self->scanner, &view, NULL) == SCAN_OK)
            result = sum_line(self, aggregates, ignored, values, &crash);
        PyBuffer_Release(&view);
        if (result == LINE_ERROR)
            goto error;
        if (result == LINE_SUMMED) {
            processed[crash]++;
        } else if (result == LINE_TO_PYTHON) {
            PyObject *done = PyObject_CallOneArg(fallback, line);
            if (done == NULL)
                goto error;
            Py_DECREF(done);
        }
    }
    PyMem_Free(values);
    return Py_BuildValue("nn", processed[0], processed[1]);
error:
    PyMem_Free(values);
    return NULL;
}

static int Summer_traverse(Summer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->scanner);
    Py_VISIT(self->known);
    return 0;
}

static void Summer_dealloc(Summer *self)
{
    PyObject_GC_UnTrack(self);
    Py_XDECREF(self->scanner);
    Py_XDECREF(self->known);
    for (int i = 0; i < ACTIVITY_DAYS; i++)
        Py_XDECREF(self->activity[i]);
    for (int i = 0; i < 2; i++) {
        Py_XDECREF(self->invalid_activity[i]);
        Py_XDECREF(self->invalid_build_id[i]);
    }
    Py_XDECREF(self->invalid_length);
    PyMem_Free(self->templates);
    PyMem_Free(self->usage);
    PyMem_Free(self->counts);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A tuple of n-tuples of integers into a new array of n * len integers. */
static Py_ssize_t *int_rows(PyObject *rows, Py_ssize_t n, Py_ssize_t *count)
{
    if (!PyTuple_Check(rows)) {
        PyErr_SetString(PyExc_TypeError, "expected a tuple of tuples");
        return NULL;
    }
    *count = PyTuple_GET_SIZE(rows);
    Py_ssize_t *out = PyMem_Calloc(*count * n + 1, sizeof(Py_ssize_t));
    if (out == NULL)
        return (Py_ssize_t *)PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < *count; i++) {
        PyObject *row = PyTuple_GET_ITEM(rows, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != n) {
            PyErr_SetString(PyExc_TypeError, "a row of the wrong size");
            PyMem_Free(out);
            return NULL;
        }
        for (Py_ssize_t j = 0; j < n; j++) {
            out[i * n + j] = PyLong_AsSsize_t(PyTuple_GET_ITEM(row, j));
            if (out[i * n + j] == -1 && PyErr_Occurred()) {
                PyMem_Free(out);
                return NULL;
            }
        }
    }
    return out;
}

static PyObject *Summer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"scanner", "known", "activity_dates", "day", "slots", "templates",
                            "usage_columns", "count_columns", "outcomes", NULL};
    PyObject *scanner, *known, *dates, *templates, *usage, *counts, *outcomes;
    long day;
    Py_ssize_t slots[4];
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!l(nnnn)O!OOO!", names, &ScannerType, &scanner, &PyDict_Type,
                                     &known, &PyTuple_Type, &dates, &day, &slots[0], &slots[1], &slots[2], &slots[3],
                                     &PyTuple_Type, &templates, &usage, &counts, &PyTuple_Type, &outcomes))
        return NULL;
    Scanner *sc = (Scanner *)scanner;
    if (PyTuple_GET_SIZE(dates) != ACTIVITY_DAYS || PyTuple_GET_SIZE(outcomes) != 5 ||
        PyTuple_GET_SIZE(templates) != 2 || sc->nsigned < 0) {
        PyErr_SetString(PyExc_ValueError, "Summer: 8 dates, 5 outcomes, 2 templates and a signing scanner");
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        if (slots[i] < 0 || slots[i] >= sc->nslots) {
            PyErr_SetString(PyExc_ValueError, "slot out of range");
            return NULL;
        }
    }
    Summer *self = (Summer *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->scanner = (Scanner *)Py_NewRef(scanner);
    self->known = Py_NewRef(known);
    for (int i = 0; i < ACTIVITY_DAYS; i++)
        self->activity[i] = Py_NewRef(PyTuple_GET_ITEM(dates, i));
    for (int i = 0; i < 2; i++) {
        self->invalid_activity[i] = Py_NewRef(PyTuple_GET_ITEM(outcomes, i));
        self->invalid_build_id[i] = Py_NewRef(PyTuple_GET_ITEM(outcomes, 2 + i));
    }
    self->invalid_length = Py_NewRef(PyTuple_GET_ITEM(outcomes, 4));
    self->day = day;
    self->crash_date = slots[0];
    self->subsession_start = slots[1];
    self->creation_date = slots[2];
    self->subsession_length = slots[3];
    PyObject *main = PyTuple_GET_ITEM(templates, 0), *crash = PyTuple_GET_ITEM(templates, 1);
    if (!PyTuple_Check(main) || !PyTuple_Check(crash) || PyTuple_GET_SIZE(main) != PyTuple_GET_SIZE(crash)) {
        PyErr_SetString(PyExc_ValueError, "two templates of the same length");
        goto fail;
    }
    self->ncolumns = PyTuple_GET_SIZE(main);
    self->templates = PyMem_Calloc(2 * self->ncolumns + 1, sizeof(double));
    if (self->templates == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < self->ncolumns; i++) {
        self->templates[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(main, i));
        self->templates[self->ncolumns + i] = PyFloat_AsDouble(PyTuple_GET_ITEM(crash, i));
    }
    if (PyErr_Occurred())
        goto fail;
    if ((self->usage = int_rows(usage, 2, &self->nusage)) == NULL ||
        (self->counts = int_rows(counts, 3, &self->ncounts)) == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < self->nusage; i++) {
        if (self->usage[2 * i] < 0 || self->usage[2 * i] + (self->usage[2 * i + 1] != 0) >= self->ncolumns) {
            PyErr_SetString(PyExc_ValueError, "usage column out of range");
            goto fail;
        }
    }
    for (Py_ssize_t i = 0; i < self->ncounts; i++) {
        const Py_ssize_t *c = &self->counts[3 * i];
        if (c[0] < 0 || c[0] >= sc->nslots || c[1] < 0 || c[1] + (c[2] != 0) >= self->ncolumns) {
            PyErr_SetString(PyExc_ValueError, "count column out of range");
            goto fail;
        }
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static PyMethodDef Summer_methods[] = {
    {"add", (PyCFunction)Summer_add, METH_VARARGS,
     "add(lines, aggregates, ignored, fallback) -> (main pings processed, crash pings processed)\n\n"
     "Sums each line into aggregates, counts ignored ones in ignored (Outcome -> n) and hands the\n"
     "others to fallback(line), in line order."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SummerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "crash_aggregates._scan.Summer",
    .tp_basicsize = sizeof(Summer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Summer(scanner, known, activity_dates, day, slots, templates, usage_columns, count_columns, outcomes)",
    .tp_new = Summer_new,
    .tp_dealloc = (destructor)Summer_dealloc,
    .tp_traverse = (traverseproc)Summer_traverse,
    .tp_methods = Summer_methods,
};

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_scan",
    .m_doc = "The compiled fast tier of ping parsing (see pings.py).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__scan(void)
{
    for (int c = 0; c < 0x20; c++)
        string_stop[c] = 1;
    for (int c = 0x80; c < 0x100; c++)
        string_stop[c] = 1;
    string_stop['"'] = 1;
    string_stop['\\'] = 1;
    if (PyType_Ready(&ScannerType) < 0 || PyType_Ready(&SummerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&scan_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Scanner", (PyObject *)&ScannerType) < 0 ||
        PyModule_AddObjectRef(m, "Summer", (PyObject *)&SummerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
