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

/* The value at a needed leaf, as the generic tier would decode it. */
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
        *value = leaf_string(s->cache, start, stop, flag);
        return *value ? SCAN_OK : SCAN_ERROR;
    case 't':
    case 'f':
    case 'n': {
        Py_ssize_t len = literal_length(s->p, s->end);
        if (len == 0)
            return SCAN_MALFORMED;
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
        *value = PyLong_FromLongLong(strtoll(text, NULL, 10));
        return *value ? SCAN_OK : SCAN_ERROR;
    }
    /* The same conversion as float(text), so the same double to the last bit. */
    double x = PyOS_string_to_double(text, NULL, NULL);
    if (x == -1.0 && PyErr_Occurred())
        return SCAN_ERROR;
    if (!isfinite(x))
        return SCAN_FALLBACK;
    *value = PyFloat_FromDouble(x);
    return *value ? SCAN_OK : SCAN_ERROR;
}

static void clear_slots(State *s, const Entry *e)
{
    for (Py_ssize_t i = 0; i < e->nslots; i++) {
        PyObject *old = PyList_GET_ITEM(s->out, e->slots[i]);
        PyList_SET_ITEM(s->out, e->slots[i], Py_NewRef(Py_None));
        Py_DECREF(old);
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
                st = read_leaf(s, &value);
                if (st == SCAN_OK) {
                    for (Py_ssize_t i = 0; i < e->nslots; i++) {
                        PyObject *old = PyList_GET_ITEM(s->out, e->slots[i]);
                        PyList_SET_ITEM(s->out, e->slots[i], Py_NewRef(value));
                        Py_DECREF(old);
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
    memset(self->spans, 0, self->nslots * sizeof(Span));

    State s = {(const unsigned char *)view.buf, (const unsigned char *)view.buf + view.len, out, self->cache, self->spans};
    Status st;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{') {
        st = SCAN_MALFORMED; /* empty, or a root that is not an object */
    } else {
        st = scan_object(&s, self->root, 0);
        if (st == SCAN_OK) {
            skip_ws(&s);
            if (s.p != s.end)
                st = SCAN_MALFORMED; /* text after the object */
        }
    }
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
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&scan_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
