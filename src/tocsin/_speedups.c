/* tocsin._speedups: Signal.send and Signal.send_robust, compiled.
 *
 * What is compiled is the hot path only, and only when nothing unusual is going on: a
 * signal that is not intercepted (muted, captured, hooked) or strict, called as
 * send(sender, **named), whose receivers for that sender are all sync. Everything else
 * (interception, strict checking, async receivers, an odd call such as send(sender=x) or
 * signal= passed as a keyword) is handed unchanged to the pure-Python method in
 * tocsin/_dispatcher.py, so that error texts and behaviour stay those of the pure-Python
 * code by construction. A cache miss is resolved by the cache itself (its __missing__),
 * as the pure path does.
 *
 * The functions become the methods of the Signal class itself (method descriptors made
 * by install()), not a Python wrapper around a C loop: the wrapper's frame costs most of
 * what compiling gains.
 *
 * Receivers are called as receiver(signal=signal, sender=sender, **named) with one
 * vectorcall each and one tuple of keyword names per send (cached per call site), never
 * a dict per receiver. Each weak receiver is dereferenced just before its call, and
 * skipped if it has died, as in the pure-Python loop.
 *
 * This module keeps its state in static variables and relies on the GIL: tocsin only
 * imports it on a CPython with a GIL (see _dispatcher.py); free-threaded builds use the
 * pure-Python path.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_OBJECT_EX T_OBJECT_EX
#endif

/* Interned attribute and keyword names. */
static PyObject *str_intercept;
static PyObject *str_buckets;
static PyObject *str_cache;
static PyObject *str_signal;
static PyObject *str_sender;
static PyObject *str_function;

/* Set by install(). */
static PyObject *no_receivers;     /* _dispatcher.NO_RECEIVERS */
static PyObject *pure_send;        /* the pure-Python Signal.send */
static PyObject *pure_send_robust; /* the pure-Python Signal.send_robust */
static PyObject *log_failure;      /* _dispatcher._log_failure(receiver, error) */
static PyTypeObject *weak_entry;   /* _refs.WeakEntry, if calling it is weakref's own call */
static PyTypeObject *weak_method_entry; /* _refs.WeakMethodEntry */
static Py_ssize_t function_offset; /* where WeakMethodEntry keeps its `function` slot */

/* The keyword names receivers are called with, by the caller's own tuple of keyword
 * names (a call site passes the same tuple, a code constant, every time), in the order
 * the pure-Python methods give the receivers' **kwargs: ("signal", "sender", *named)
 * when send() calls a single receiver, (*named, "signal", "sender") otherwise. A small
 * direct-mapped cache per order; it holds its keys, so a key's address is never reused. */
#define NAMES_CACHE_SIZE 32
typedef struct {
    PyObject *keys[NAMES_CACHE_SIZE];
    PyObject *values[NAMES_CACHE_SIZE];
    PyObject *bare; /* the names of a send without named arguments */
} NamesCache;
static NamesCache names_first; /* signal and sender first */
static NamesCache names_last;  /* signal and sender last */

/* Room on the C stack for the arguments of most sends (past it, the heap). */
#define SMALL_STACK 24
#define SMALL_PAIRS 32

static PyObject *
names_for(NamesCache *cache, PyObject *kwnames)
{
    if (kwnames == NULL) {
        return Py_NewRef(cache->bare);
    }
    size_t slot = ((size_t)(uintptr_t)kwnames >> 4) % NAMES_CACHE_SIZE;
    if (cache->keys[slot] == kwnames) {
        return Py_NewRef(cache->values[slot]);
    }
    Py_ssize_t count = PyTuple_GET_SIZE(kwnames);
    PyObject *names = PyTuple_New(count + 2);
    if (names == NULL) {
        return NULL;
    }
    Py_ssize_t offset = cache == &names_first ? 2 : 0;
    Py_ssize_t own = cache == &names_first ? 0 : count;
    PyTuple_SET_ITEM(names, own, Py_NewRef(str_signal));
    PyTuple_SET_ITEM(names, own + 1, Py_NewRef(str_sender));
    for (Py_ssize_t i = 0; i < count; i++) {
        PyTuple_SET_ITEM(names, i + offset, Py_NewRef(PyTuple_GET_ITEM(kwnames, i)));
    }
    /* Replacing an entry frees at most tuples of strings: no Python code runs. */
    Py_XSETREF(cache->keys[slot], Py_NewRef(kwnames));
    Py_XSETREF(cache->values[slot], Py_NewRef(names));
    return names;
}

/* Whether a keyword name is "signal" or "sender" (the pure path deals with those). */
static inline int
is_reserved(PyObject *name)
{
    if (name == str_signal || name == str_sender) {
        return 1;
    }
    /* A name built at run time (send(x, **{...})) may be equal without being interned. */
    if (PyUnicode_GET_LENGTH(name) != 6) {
        return 0;
    }
    return PyUnicode_Compare(name, str_signal) == 0 || PyUnicode_Compare(name, str_sender) == 0;
}

/* The pure-Python method, called with the arguments exactly as given. */
static PyObject *
call_pure(PyObject *method, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    Py_ssize_t total = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    PyObject *small[SMALL_STACK];
    PyObject **stack = small;
    if (total + 2 > SMALL_STACK) {
        stack = PyMem_Malloc((size_t)(total + 2) * sizeof(PyObject *));
        if (stack == NULL) {
            return PyErr_NoMemory();
        }
    }
    /* stack[0] is the spare slot PY_VECTORCALL_ARGUMENTS_OFFSET allows the callee. */
    stack[1] = self;
    if (total) {
        memcpy(stack + 2, args, (size_t)total * sizeof(PyObject *));
    }
    PyObject *result = PyObject_Vectorcall(
        method, stack + 1, (size_t)(nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
    if (stack != small) {
        PyMem_Free(stack);
    }
    return result;
}

/* The receiver held by one resolved entry: 1 and a new reference in *receiver if it is
 * alive, 0 if it has died, -1 on error. Mirrors the entries' own __call__ in _refs.py. */
static inline int
dereference(PyObject *ref, PyObject **receiver)
{
    PyTypeObject *type = Py_TYPE(ref);
    if (type == weak_entry || type == weak_method_entry) {
        PyObject *target;
#if PY_VERSION_HEX >= 0x030D0000
        if (PyWeakref_GetRef(ref, &target) < 0) {
            return -1;
        }
        if (target == NULL) {
            return 0;
        }
#else
        target = PyWeakref_GetObject(ref);
        if (target == NULL) {
            return -1;
        }
        if (target == Py_None) {
            return 0;
        }
        Py_INCREF(target);
#endif
        if (type == weak_entry) {
            *receiver = target;
            return 1;
        }
        /* A bound method held through its instance: rebuilt from the function. */
        PyObject *function = *(PyObject **)((char *)ref + function_offset);
        if (function == NULL) {
            Py_DECREF(target);
            goto generic; /* raises the AttributeError the pure path would */
        }
        *receiver = PyMethod_New(function, target);
        Py_DECREF(target);
        return *receiver == NULL ? -1 : 1;
    }
generic:
    *receiver = PyObject_CallNoArgs(ref);
    if (*receiver == NULL) {
        return -1;
    }
    if (*receiver == Py_None) {
        Py_DECREF(*receiver);
        return 0;
    }
    return 1;
}

/* The exception being raised, normalized and with its traceback; the indicator cleared. */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
#endif
}

/* send_robust's handling of a receiver's Exception: log it as the pure path does (inside
 * what Python would see as its `except` block) and return it as the response. */
static PyObject *
log_and_return_failure(PyObject *receiver)
{
    PyObject *error = take_exception();
    if (error == NULL) {
        return NULL;
    }
    PyObject *handled = PyErr_GetHandledException();
    PyErr_SetHandledException(error);
    PyObject *args[2] = {receiver, error};
    PyObject *logged = PyObject_Vectorcall(log_failure, args, 2, NULL);
    PyErr_SetHandledException(handled);
    Py_XDECREF(handled);
    if (logged == NULL) {
        Py_DECREF(error);
        return NULL;
    }
    Py_DECREF(logged);
    return error;
}

static PyObject *
dispatch(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
         int robust)
{
    PyObject *pure = robust ? pure_send_robust : pure_send;
    if (nargs != 1) {
        return call_pure(pure, self, args, nargs, kwnames);
    }
    Py_ssize_t named = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < named; i++) {
        if (is_reserved(PyTuple_GET_ITEM(kwnames, i))) {
            return call_pure(pure, self, args, nargs, kwnames);
        }
    }

    /* Interception and strict checking first, as the pure-Python methods do. */
    PyObject *intercept = PyObject_GetAttr(self, str_intercept);
    if (intercept == NULL) {
        PyErr_Clear(); /* the pure path raises its own error, if any */
        return call_pure(pure, self, args, nargs, kwnames);
    }
    Py_DECREF(intercept);
    if (intercept != Py_None) {
        return call_pure(pure, self, args, nargs, kwnames);
    }

    PyObject *buckets = PyObject_GetAttr(self, str_buckets);
    if (buckets == NULL || !PyDict_Check(buckets)) {
        Py_XDECREF(buckets);
        PyErr_Clear();
        return call_pure(pure, self, args, nargs, kwnames);
    }
    Py_ssize_t connected = PyDict_GET_SIZE(buckets);
    Py_DECREF(buckets);
    if (connected == 0) {
        return PyList_New(0);
    }

    /* A dict whose __missing__ resolves: read without it first (a hit is the common
     * case), then by subscript on a miss, as the pure path does. */
    PyObject *cache = PyObject_GetAttr(self, str_cache);
    if (cache == NULL || !PyDict_Check(cache)) {
        Py_XDECREF(cache);
        PyErr_Clear();
        return call_pure(pure, self, args, nargs, kwnames);
    }
    PyObject *sender = args[0];
    PyObject *key = PyLong_FromVoidPtr(sender);
    if (key == NULL) {
        Py_DECREF(cache);
        return NULL;
    }
    PyObject *resolved = PyDict_GetItemWithError(cache, key);
    /* Held for the whole send: a receiver may invalidate the cache entry meanwhile. */
    Py_XINCREF(resolved);
    if (resolved == NULL && !PyErr_Occurred()) {
        /* A miss: resolve as the pure path does, by the cache's own subscript (its
         * __missing__ resolves and caches), then send from here. */
        resolved = PyObject_GetItem(cache, key);
    }
    Py_DECREF(key);
    Py_DECREF(cache);
    if (resolved == NULL) {
        return NULL;
    }
    if (resolved == no_receivers) {
        Py_DECREF(resolved);
        return PyList_New(0);
    }
    if (!PyTuple_CheckExact(resolved) || PyTuple_GET_SIZE(resolved) != 2 ||
        !PyTuple_CheckExact(PyTuple_GET_ITEM(resolved, 0)) ||
        !PyTuple_CheckExact(PyTuple_GET_ITEM(resolved, 1)) ||
        PyTuple_GET_SIZE(PyTuple_GET_ITEM(resolved, 1)) != 0) {
        /* Async receivers (or something unexpected): the pure path deals with them. */
        Py_DECREF(resolved);
        return call_pure(pure, self, args, nargs, kwnames);
    }
    PyObject *sync = PyTuple_GET_ITEM(resolved, 0);
    Py_ssize_t count = PyTuple_GET_SIZE(sync);

    /* The pure send() calls a single receiver as receiver(signal=, sender=, **named), and
     * several (and send_robust() any) as receiver(**named) with signal and sender added
     * last: the receivers' **kwargs keep that order here too. */
    int first = !robust && count == 1;
    PyObject *names = names_for(first ? &names_first : &names_last, kwnames);
    if (names == NULL) {
        Py_DECREF(resolved);
        return NULL;
    }
    /* The receivers' arguments: a spare slot (for PY_VECTORCALL_ARGUMENTS_OFFSET), then
     * signal, sender and the named values, all by keyword. */
    PyObject *small_stack[SMALL_STACK];
    PyObject **stack = small_stack;
    PyObject *small_pairs[SMALL_PAIRS];
    PyObject **pairs = small_pairs;
    Py_ssize_t done = 0;
    PyObject *result = NULL;
    if (named + 3 > SMALL_STACK) {
        stack = PyMem_Malloc((size_t)(named + 3) * sizeof(PyObject *));
        if (stack == NULL) {
            PyErr_NoMemory();
            goto finally;
        }
    }
    if (count > SMALL_PAIRS) {
        pairs = PyMem_Malloc((size_t)count * sizeof(PyObject *));
        if (pairs == NULL) {
            PyErr_NoMemory();
            goto finally;
        }
    }
    PyObject **values = stack + 1;
    if (first) {
        values[0] = self;
        values[1] = sender;
        values += 2;
    } else {
        values[named] = self;
        values[named + 1] = sender;
    }
    if (named) {
        memcpy(values, args + 1, (size_t)named * sizeof(PyObject *));
    }

    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *receiver;
        int alive = dereference(PyTuple_GET_ITEM(sync, i), &receiver);
        if (alive < 0) {
            goto finally;
        }
        if (alive == 0) {
            continue;
        }
        PyObject *response =
            PyObject_Vectorcall(receiver, stack + 1, PY_VECTORCALL_ARGUMENTS_OFFSET, names);
        if (response == NULL) {
            if (robust && PyErr_ExceptionMatches(PyExc_Exception)) {
                response = log_and_return_failure(receiver);
            }
            if (response == NULL) {
                Py_DECREF(receiver);
                goto finally;
            }
        }
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_DECREF(receiver);
            Py_DECREF(response);
            goto finally;
        }
        PyTuple_SET_ITEM(pair, 0, receiver);
        PyTuple_SET_ITEM(pair, 1, response);
        pairs[done++] = pair;
    }
    result = PyList_New(done);
    if (result != NULL) {
        for (Py_ssize_t i = 0; i < done; i++) {
            PyList_SET_ITEM(result, i, pairs[i]);
        }
        done = 0; /* the list owns them now */
    }

finally:
    for (Py_ssize_t i = 0; i < done; i++) {
        Py_DECREF(pairs[i]);
    }
    if (pairs != small_pairs) {
        PyMem_Free(pairs);
    }
    if (stack != small_stack) {
        PyMem_Free(stack);
    }
    Py_DECREF(names);
    Py_DECREF(resolved);
    return result;
}

static PyObject *
send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return dispatch(self, args, nargs, kwnames, 0);
}

static PyObject *
send_robust(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return dispatch(self, args, nargs, kwnames, 1);
}

/* Method definitions live as long as the descriptors made from them: for ever. Their
 * docstrings (a text signature for inspect.signature, then the pure method's docstring)
 * are built by install(). */
static PyMethodDef send_def = {"send", (PyCFunction)(void (*)(void))send,
                               METH_FASTCALL | METH_KEYWORDS, NULL};
static PyMethodDef send_robust_def = {"send_robust", (PyCFunction)(void (*)(void))send_robust,
                                      METH_FASTCALL | METH_KEYWORDS, NULL};

static int
set_doc(PyMethodDef *def, PyObject *method)
{
    PyObject *doc = PyObject_GetAttrString(method, "__doc__");
    if (doc == NULL) {
        return -1;
    }
    PyObject *text;
    if (PyUnicode_Check(doc)) {
        text = PyUnicode_FromFormat("%s($self, sender, **named)\n--\n\n%U", def->ml_name, doc);
    } else {
        text = PyUnicode_FromFormat("%s($self, sender, **named)\n--\n\n", def->ml_name);
    }
    Py_DECREF(doc);
    if (text == NULL) {
        return -1;
    }
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    if (utf8 == NULL) {
        Py_DECREF(text);
        return -1;
    }
    char *copy = PyMem_RawMalloc((size_t)size + 1);
    if (copy == NULL) {
        Py_DECREF(text);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, utf8, (size_t)size + 1);
    Py_DECREF(text);
    /* A previous install()'s text stays: descriptors made then may still point at it. */
    def->ml_doc = copy;
    return 0;
}

/* Where a class's __slots__ member `name` lives in its instances, or -1. */
static Py_ssize_t
slot_offset(PyTypeObject *type, PyObject *name)
{
    PyObject *descriptor = PyObject_GetAttr((PyObject *)type, name);
    if (descriptor == NULL) {
        return -1;
    }
    Py_ssize_t offset = -1;
    if (Py_IS_TYPE(descriptor, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
        if (member->type == Py_T_OBJECT_EX) {
            offset = member->offset;
        }
    }
    Py_DECREF(descriptor);
    return offset;
}

PyDoc_STRVAR(install_doc,
             "install(cls, send, send_robust, log_failure, no_receivers, weak_entry, "
             "weak_method_entry)\n--\n\n"
             "Return (send, send_robust): compiled methods for *cls* that fall back to the\n"
             "given pure-Python ones. tocsin._dispatcher calls it once and sets them on\n"
             "Signal.");

static PyObject *
install(PyObject *module, PyObject *args)
{
    PyObject *cls, *send_method, *send_robust_method, *log, *nothing;
    PyObject *weak, *weak_method;
    if (!PyArg_ParseTuple(args, "O!OOOOO!O!:install", &PyType_Type, &cls, &send_method,
                          &send_robust_method, &log, &nothing, &PyType_Type, &weak,
                          &PyType_Type, &weak_method)) {
        return NULL;
    }
    if (!PyType_IsSubtype((PyTypeObject *)weak, &_PyWeakref_RefType) ||
        !PyType_IsSubtype((PyTypeObject *)weak_method, &_PyWeakref_RefType)) {
        PyErr_SetString(PyExc_TypeError, "install(): the entry types must be weakref.ref "
                                         "subclasses");
        return NULL;
    }
    Py_ssize_t offset = slot_offset((PyTypeObject *)weak_method, str_function);
    if (offset < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError,
                            "install(): the weak method entry has no `function` slot");
        }
        return NULL;
    }
    if (set_doc(&send_def, send_method) < 0 || set_doc(&send_robust_def, send_robust_method) < 0) {
        return NULL;
    }
    PyObject *compiled_send = PyDescr_NewMethod((PyTypeObject *)cls, &send_def);
    if (compiled_send == NULL) {
        return NULL;
    }
    PyObject *compiled_send_robust = PyDescr_NewMethod((PyTypeObject *)cls, &send_robust_def);
    if (compiled_send_robust == NULL) {
        Py_DECREF(compiled_send);
        return NULL;
    }
    Py_XSETREF(pure_send, Py_NewRef(send_method));
    Py_XSETREF(pure_send_robust, Py_NewRef(send_robust_method));
    Py_XSETREF(log_failure, Py_NewRef(log));
    Py_XSETREF(no_receivers, Py_NewRef(nothing));
    /* The shortcut for weak entries reads the referent directly: only right while the
     * entry class calls like weakref.ref itself. Otherwise it is called like any entry. */
    PyTypeObject *old_weak = weak_entry, *old_weak_method = weak_method_entry;
    weak_entry = ((PyTypeObject *)weak)->tp_call == _PyWeakref_RefType.tp_call
                     ? (PyTypeObject *)Py_NewRef(weak)
                     : NULL;
    weak_method_entry = (PyTypeObject *)Py_NewRef(weak_method);
    function_offset = offset;
    Py_XDECREF(old_weak);
    Py_XDECREF(old_weak_method);
    return Py_BuildValue("(NN)", compiled_send, compiled_send_robust);
}

static PyMethodDef module_methods[] = {
    {"install", install, METH_VARARGS, install_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tocsin._speedups",
    .m_doc = "Compiled Signal.send and Signal.send_robust (see tocsin/_dispatcher.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

static PyObject *
intern(const char *text)
{
    return PyUnicode_InternFromString(text);
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (!(str_intercept = intern("_intercept")) || !(str_buckets = intern("_buckets")) ||
        !(str_cache = intern("_cache")) || !(str_signal = intern("signal")) ||
        !(str_sender = intern("sender")) || !(str_function = intern("function"))) {
        return NULL;
    }
    names_first.bare = PyTuple_Pack(2, str_signal, str_sender);
    names_last.bare = Py_XNewRef(names_first.bare);
    if (names_first.bare == NULL) {
        return NULL;
    }
    return PyModule_Create(&speedups_module);
}
