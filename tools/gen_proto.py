#!/usr/bin/python3
"""gen_proto.py — turns src/proto/defs/*.def into kmsg.h and kmsg.c.

The language is described in docs/protocol-dsl.md. The generated code is
straight-line C, one decode/encode/init function per struct, with
`if (v >= A && v <= B)` guards per field, so it reads like hand-written
code and is easy to step through in a debugger.

Usage: gen_proto.py -o OUTDIR FILE.def...

A malformed description prints `file:line: message` and exits 1.
Standard library only.
"""

import argparse
import os
import re
import sys

# ---------------------------------------------------------------- model

# name -> (C type, fixed wire width or None)
PRIMS = {
    'bool': ('bool', 1),
    'int8': ('int8_t', 1),
    'int16': ('int16_t', 2),
    'int32': ('int32_t', 4),
    'int64': ('int64_t', 8),
    'uint16': ('uint16_t', 2),
    'float64': ('double', 8),
    'uuid': (None, 16),
    'string': ('kstr', None),
    'bytes': ('kbytes', None),
    'records': ('kbytes', None),
}
INT_RANGES = {
    'int8': (-2**7, 2**7 - 1),
    'int16': (-2**15, 2**15 - 1),
    'int32': (-2**31, 2**31 - 1),
    'int64': (-2**63, 2**63 - 1),
    'uint16': (0, 2**16 - 1),
}
NULLABLE_PRIMS = ('string', 'bytes', 'records')
C_KEYWORDS = set('''auto break case char const continue default do double else
enum extern float for goto if inline int long register restrict return short
signed sizeof static struct switch typedef union unsigned void volatile while
bool true false'''.split())


class DefError(Exception):
    def __init__(self, where, msg):
        super().__init__('%s:%d: %s' % (where[0], where[1], msg))


def snake(name):
    s = re.sub(r'([A-Z]+)([A-Z][a-z])', r'\1_\2', name)
    s = re.sub(r'([a-z0-9])([A-Z])', r'\1_\2', s)
    return s.lower()


class Field:
    def __init__(self, where):
        self.where = where
        self.name = None
        self.kind = None      # 'prim', 'array', 'struct'
        self.prim = None      # prim name for 'prim', or element prim of 'array'
        self.sname = None     # struct name for struct / array of struct
        self.sdef = None      # resolved StructDef
        self.versions = (0, None)
        self.nullable = None  # (lo, hi) or None
        self.tag = None
        self.default = None   # raw token or None
        self.children = None  # StructDef when defined inline

    def is_struct_elem(self):
        return self.sname is not None


class StructDef:
    def __init__(self, name, where):
        self.name = name
        self.where = where
        self.fields = []
        self.child_indent = None
        self.cname = None


class Api:
    def __init__(self, where):
        self.where = where
        self.name = None
        self.key = None
        self.vmin = self.vmax = None
        self.flex = -1
        self.req = None
        self.resp = None
        self.commons = None  # dict name -> StructDef (shared per file)
        self.snake = None


# ---------------------------------------------------------------- parser

VERS_RE = re.compile(r'^(\d+)(\+|-(\d+))?$')
TOKEN_RE = re.compile(r'(?:[^\s"]+|"(?:[^"\\]|\\.)*")+')
STRUCT_NAME_RE = re.compile(r'^[A-Z][A-Za-z0-9]*$')
FIELD_NAME_RE = re.compile(r'^[a-z][a-z0-9_]*$')


def parse_versions(tok, where):
    m = VERS_RE.match(tok)
    if not m:
        raise DefError(where, 'bad version range %r (want N, N+ or N-M)' % tok)
    lo = int(m.group(1))
    if m.group(2) is None:
        return (lo, lo)
    if m.group(2) == '+':
        return (lo, None)
    hi = int(m.group(3))
    if hi < lo:
        raise DefError(where, 'empty version range %r' % tok)
    return (lo, hi)


def strip_comment(line):
    inq = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == '\\' and inq:
            i += 2
            continue
        if c == '"':
            inq = not inq
        elif c == '#' and not inq:
            return line[:i]
        i += 1
    return line


def parse_field(toks, where):
    f = Field(where)
    if len(toks) < 2:
        raise DefError(where, 'a field needs a name and a type')
    f.name, typ = toks[0], toks[1]
    if not FIELD_NAME_RE.match(f.name):
        raise DefError(where, 'field name %r is not snake_case' % f.name)
    if f.name in C_KEYWORDS:
        raise DefError(where, 'field name %r is a C keyword' % f.name)
    if typ.startswith('[]'):
        f.kind = 'array'
        el = typ[2:]
        if el in PRIMS:
            if el in ('bytes', 'records'):
                raise DefError(where, 'arrays of %s are not supported' % el)
            f.prim = el
        elif STRUCT_NAME_RE.match(el):
            f.sname = el
        else:
            raise DefError(where, 'unknown element type %r' % el)
    elif typ in PRIMS:
        f.kind = 'prim'
        f.prim = typ
    elif STRUCT_NAME_RE.match(typ):
        f.kind = 'struct'
        f.sname = typ
    else:
        raise DefError(where, 'unknown type %r' % typ)
    for t in toks[2:]:
        if '=' in t:
            k, _, val = t.partition('=')
            if k == 'nullable':
                f.nullable = parse_versions(val, where)
            elif k == 'tag':
                if not val.isdigit():
                    raise DefError(where, 'bad tag %r' % val)
                f.tag = int(val)
            elif k == 'default':
                if val == '':
                    raise DefError(where, 'empty default')
                f.default = val
            else:
                raise DefError(where, 'unknown attribute %r' % k)
        else:
            f.versions = parse_versions(t, where)
    if f.nullable is not None:
        if f.kind == 'struct':
            raise DefError(where, 'a nullable single struct is not supported')
        if f.kind == 'prim' and f.prim not in NULLABLE_PRIMS:
            raise DefError(where, '%s cannot be nullable' % f.prim)
    check_default(f)
    return f


def check_default(f):
    d, where = f.default, f.where
    if d is None:
        return
    if d == 'null':
        if f.nullable is None:
            raise DefError(where, 'default=null needs nullable=')
        return
    if f.kind != 'prim':
        raise DefError(where, 'only default=null is allowed for arrays and structs')
    p = f.prim
    if p in INT_RANGES:
        try:
            val = int(d, 0)
        except ValueError:
            raise DefError(where, 'bad integer default %r' % d)
        lo, hi = INT_RANGES[p]
        if not lo <= val <= hi:
            raise DefError(where, 'default %s out of range for %s' % (d, p))
    elif p == 'bool':
        if d not in ('true', 'false'):
            raise DefError(where, 'bool default must be true or false')
    elif p == 'float64':
        try:
            float(d)
        except ValueError:
            raise DefError(where, 'bad float default %r' % d)
    elif p == 'string':
        if not (len(d) >= 2 and d[0] == '"' and d[-1] == '"'):
            raise DefError(where, 'string default must be in double quotes or null')
    else:
        raise DefError(where, 'a default is not supported for %s' % p)


def parse_file(path, apis):
    commons = {}
    cur_api = None
    root = None         # StructDef receiving fields
    stack = None        # [(indent, StructDef)]
    last = None         # (indent, Field) of the previous field line
    file_apis = []
    with open(path, encoding='utf-8') as fh:
        lines = fh.read().split('\n')
    for lineno, raw in enumerate(lines, 1):
        where = (path, lineno)
        line = strip_comment(raw.expandtabs(8)).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(' '))
        toks = TOKEN_RE.findall(line)
        if indent == 0:
            last = None
            word = toks[0]
            if word == 'api':
                cur_api = parse_api(toks, where)
                cur_api.commons = commons
                file_apis.append(cur_api)
                apis.append(cur_api)
                root = None
            elif word in ('request', 'response'):
                if len(toks) != 1:
                    raise DefError(where, 'junk after %r' % word)
                if cur_api is None:
                    raise DefError(where, '%r before any api line' % word)
                if getattr(cur_api, 'req' if word == 'request' else 'resp') is not None:
                    raise DefError(where, 'second %r section for %s' % (word, cur_api.name))
                root = StructDef(None, where)
                if word == 'request':
                    cur_api.req = root
                else:
                    cur_api.resp = root
                stack = [(0, root)]
            elif word == 'struct':
                if len(toks) != 2 or not STRUCT_NAME_RE.match(toks[1]):
                    raise DefError(where, 'want: struct Name')
                if toks[1] in commons:
                    raise DefError(where, 'struct %s defined twice' % toks[1])
                root = StructDef(toks[1], where)
                commons[toks[1]] = root
                stack = [(0, root)]
            else:
                raise DefError(where, 'unknown directive %r' % word)
            continue
        if root is None:
            raise DefError(where, 'field outside request, response or struct')
        f = parse_field(toks, where)
        if last is not None and indent > last[0] and last[1].sname is None:
            raise DefError(where, 'indented under %r, which is not a struct'
                           % last[1].name)
        while len(stack) > 1 and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if parent.child_indent is None:
            parent.child_indent = indent
        elif parent.child_indent != indent:
            raise DefError(where, 'inconsistent indentation')
        for g in parent.fields:
            if g.name == f.name:
                raise DefError(where, 'field %r defined twice' % f.name)
        parent.fields.append(f)
        if f.sname is not None:
            sd = StructDef(f.sname, where)
            f.children = sd
            stack.append((indent, sd))
        last = (indent, f)
    for api in file_apis:
        if api.req is None or api.resp is None:
            raise DefError(api.where, 'api %s needs a request and a response section'
                           % api.name)


def parse_api(toks, where):
    api = Api(where)
    if len(toks) < 2 or not STRUCT_NAME_RE.match(toks[1]):
        raise DefError(where, 'want: api Name key=N versions=A-B flexible=F+|none')
    api.name = toks[1]
    api.snake = snake(api.name)
    flex_seen = False
    for t in toks[2:]:
        k, eq, val = t.partition('=')
        if not eq:
            raise DefError(where, 'unexpected %r' % t)
        if k == 'key':
            if not val.isdigit():
                raise DefError(where, 'bad key %r' % val)
            api.key = int(val)
        elif k == 'versions':
            lo, hi = parse_versions(val, where)
            if hi is None:
                raise DefError(where, 'api versions need an upper bound')
            api.vmin, api.vmax = lo, hi
        elif k == 'flexible':
            flex_seen = True
            if val == 'none':
                api.flex = -1
            else:
                m = re.match(r'^(\d+)\+$', val)
                if not m:
                    raise DefError(where, 'flexible= wants N+ or none')
                api.flex = int(m.group(1))
        else:
            raise DefError(where, 'unknown api attribute %r' % k)
    if api.key is None or api.vmin is None or not flex_seen:
        raise DefError(where, 'api line needs key=, versions= and flexible=')
    if api.key > 32767 or api.vmax > 32767:
        raise DefError(where, 'key or version out of int16 range')
    return api


# ---------------------------------------------------------------- resolve

class Ctx:
    """Per-api, per-message resolution state."""

    def __init__(self, api, side):
        self.api = api
        self.side = side          # 'req' or 'resp'
        self.local = {}           # struct name -> StructDef (inline definitions)
        self.order = []           # StructDefs in definition order (children first)


def resolve(api, all_cnames):
    api.common_inst = {}  # name -> StructDef instance for this api
    api.structs = []      # everything to emit, children before parents
    for side, root in (('req', api.req), ('resp', api.resp)):
        ctx = Ctx(api, side)
        root.cname = 'kmsg_%s_%s' % (api.snake, side)
        root.resp = side == 'resp'
        # First pass: register every inline definition of this message.
        collect_local(root, ctx)
        resolve_struct(root, ctx, api, all_cnames)
        register_cname(root, all_cnames)
        api.structs.append(root)


def collect_local(sd, ctx):
    for f in sd.fields:
        if f.children is not None and f.children.fields:
            prev = ctx.local.get(f.sname)
            if prev is not None:
                raise DefError(f.where, 'struct %s defined twice in this message '
                               '(first at line %d)' % (f.sname, prev.where[1]))
            ctx.local[f.sname] = f.children
            collect_local(f.children, ctx)


def register_cname(sd, all_cnames):
    if sd.cname in all_cnames and all_cnames[sd.cname] is not sd:
        raise DefError(sd.where, 'C name %s is generated twice' % sd.cname)
    all_cnames[sd.cname] = sd


def resolve_struct(sd, ctx, api, all_cnames):
    tags = {}
    names = set(f.name for f in sd.fields)
    for f in sd.fields:
        lo, hi = f.versions
        if f.tag is not None:
            if api.flex < 0 or lo < api.flex:
                raise DefError(f.where, 'tagged field %r must start at or after the '
                               'first flexible version' % f.name)
            if f.tag in tags:
                raise DefError(f.where, 'tag %d used twice' % f.tag)
            tags[f.tag] = f
        if f.kind == 'array' and f.name + '_count' in names:
            raise DefError(f.where, '%s_count clashes with another field' % f.name)
        if f.kind == 'struct' and f.tag is not None and 'has_' + f.name in names:
            raise DefError(f.where, 'has_%s clashes with another field' % f.name)
        if f.sname is None:
            continue
        if f.sname in ctx.local:
            target = ctx.local[f.sname]
            if target.cname is None:
                target.cname = 'kmsg_%s_%s_%s' % (api.snake, ctx.side, snake(f.sname))
                target.resp = ctx.side == 'resp'
                target.resolving = True
                resolve_struct(target, ctx, api, all_cnames)
                target.resolving = False
                register_cname(target, all_cnames)
                api.structs.append(target)
            elif getattr(target, 'resolving', False):
                raise DefError(f.where, 'struct %s contains itself' % f.sname)
        elif f.sname in api.commons:
            target = api.common_inst.get(f.sname)
            if target is None:
                tmpl = api.commons[f.sname]
                target = StructDef(f.sname, tmpl.where)
                target.fields = tmpl.fields
                target.cname = 'kmsg_%s_%s' % (api.snake, snake(f.sname))
                target.resp = ctx.side == 'resp'
                api.common_inst[f.sname] = target
                target.resolving = True
                resolve_struct(target, ctx, api, all_cnames)
                target.resolving = False
                register_cname(target, all_cnames)
                api.structs.append(target)
            elif getattr(target, 'resolving', False):
                raise DefError(f.where, 'struct %s contains itself' % f.sname)
        else:
            raise DefError(f.where, 'unknown struct %s (no indented fields and no '
                           'common struct of that name)' % f.sname)
        f.sdef = target


# ---------------------------------------------------------------- C helpers

def vcond(vr, api):
    """C condition for 'v in vr', simplified against the api's range."""
    lo, hi = vr
    if (hi is not None and hi < api.vmin) or lo > api.vmax:
        return '0'
    parts = []
    if lo > api.vmin:
        parts.append('v >= %d' % lo)
    if hi is not None and hi < api.vmax:
        parts.append('v <= %d' % hi)
    if not parts:
        return '1'
    return ' && '.join(parts)


def nullc(f, api):
    if f.nullable is None:
        return 'false'
    c = vcond(f.nullable, api)
    return {'1': 'true', '0': 'false'}.get(c, '(%s)' % c)


def field_cond(f, api):
    c = vcond(f.versions, api)
    if f.tag is not None:
        c = 'flex' if c == '1' else 'flex && ' + c
    return c


def c_string(s):
    # s is the quoted token from the .def; it uses C-compatible escapes.
    return s


def c_int(val, prim):
    if prim == 'int64':
        if val == -2**63:
            return 'INT64_MIN'
        return 'INT64_C(%d)' % val
    if prim == 'int32' and val == -2**31:
        return 'INT32_MIN'
    return '%d' % val


def default_expr(f):
    d = f.default
    p = f.prim
    if p in INT_RANGES:
        return c_int(int(d, 0) if d else 0, p)
    if p == 'bool':
        return 'true' if d == 'true' else 'false'
    if p == 'float64':
        return repr(float(d)) if d else '0.0'
    raise AssertionError(p)


def str_default_len(d):
    # length of the C string literal d (with quotes) at run time
    return 'sizeof(%s) - 1' % d


class W:
    def __init__(self):
        self.lines = []

    def __call__(self, s='', ind=0):
        self.lines.append(('\t' * ind + s) if s else '')

    def text(self):
        return '\n'.join(self.lines) + '\n'


def with_cond(w, cond, ind, body):
    """Emit body(ind) under `if (cond)` unless cond is trivially true."""
    if cond == '0':
        return
    if cond == '1':
        body(ind)
        return
    w('if (%s) {' % cond, ind)
    body(ind + 1)
    w('}', ind)


# ---- init

def gen_init(w, sd, api, public):
    w('%svoid %s_init(struct %s *m)' % ('' if public else 'static ', sd.cname, sd.cname))
    w('{')
    w('memset(m, 0, sizeof(*m));', 1)
    for f in sd.fields:
        x = 'm->' + f.name
        if f.kind == 'array':
            if f.default == 'null':
                w('%s_count = -1;' % x, 1)
        elif f.kind == 'struct':
            w('%s_init(&%s);' % (f.sdef.cname, x), 1)
        elif f.prim == 'string':
            if f.default == 'null':
                w('%s = KSTR_NULL;' % x, 1)
            elif f.default is None:
                w('%s = (kstr){ "", 0 };' % x, 1)
            else:
                w('%s = (kstr){ %s, (int32_t)(%s) };' % (x, c_string(f.default),
                                                        str_default_len(f.default)), 1)
        elif f.prim in ('bytes', 'records'):
            if f.default == 'null':
                w('%s = KBYTES_NULL;' % x, 1)
        elif f.prim == 'uuid':
            pass
        elif f.default is not None:
            w('%s = %s;' % (x, default_expr(f)), 1)
    w('}')
    w()


# ---- decode

READERS = {
    'bool': 'kreader_i8(%s) != 0',
    'int8': 'kreader_i8(%s)',
    'int16': 'kreader_i16(%s)',
    'int32': 'kreader_i32(%s)',
    'int64': 'kreader_i64(%s)',
    'uint16': 'kreader_u16(%s)',
    'float64': 'kreader_f64(%s)',
}


def dec_prim(w, prim, x, R, nullable, ind):
    if prim in READERS:
        w('%s = %s;' % (x, READERS[prim] % R), ind)
    elif prim == 'uuid':
        w('kmsg__read_uuid(%s, %s);' % (R, x), ind)
    elif prim == 'string':
        w('kmsg__read_str(%s, flex, %s, &%s);' % (R, nullable, x), ind)
    else:
        w('kmsg__read_bytes(%s, flex, %s, &%s);' % (R, nullable, x), ind)


def elem_min(f):
    if f.prim is None:
        return '1'
    if f.prim == 'string':
        return '(flex ? 1 : 2)'
    return str(PRIMS[f.prim][1])


def dec_field(w, f, api, R, ind):
    x = 'm->' + f.name
    if f.kind == 'prim':
        dec_prim(w, f.prim, x, R, nullc(f, api), ind)
    elif f.kind == 'struct':
        w('if ((rc = %s_decode(%s, v, &%s, a)) != 0)' % (f.sdef.cname, R, x), ind)
        w('return rc;', ind + 1)
        if f.tag is not None:
            w('m->has_%s = true;' % f.name, ind)
    else:
        w('{', ind)
        i = ind + 1
        w('int32_t n = kmsg__read_count(%s, flex, %s, %s);' % (R, nullc(f, api), elem_min(f)), i)
        w('%s_count = n;' % x, i)
        w('if (n > 0) {', i)
        w('%s = arena_alloc(a, (size_t)n * sizeof(*%s));' % (x, x), i + 1)
        w('if (!%s)' % x, i + 1)
        w('return SL_ENOMEM;', i + 2)
        w('for (int32_t i = 0; i < n; i++) {', i + 1)
        if f.sdef is not None:
            w('if ((rc = %s_decode(%s, v, &%s[i], a)) != 0)' % (f.sdef.cname, R, x), i + 2)
            w('return rc;', i + 3)
        else:
            dec_prim(w, f.prim, '%s[i]' % x, R, 'false', i + 2)
        w('}', i + 1)
        w('}', i)
        w('}', ind)


def gen_decode(w, sd, api, public):
    w('%sint %s_decode(struct kreader *r, int16_t v, struct %s *m, struct arena *a)'
      % ('' if public else 'static ', sd.cname, sd.cname))
    w('{')
    w('const bool flex = %s;' % flex_expr(api), 1)
    w('int rc = 0;', 1)
    w()
    w('(void)flex;', 1)
    w('(void)rc;', 1)
    if public:
        w('if (v < %d || v > %d)' % (api.vmin, api.vmax), 1)
        w('return SL_EUNSUPPORTED;', 2)
    w('%s_init(m);' % sd.cname, 1)
    for f in sd.fields:
        if f.tag is not None:
            continue
        with_cond(w, field_cond(f, api), 1, lambda ind, f=f: dec_field(w, f, api, 'r', ind))
    if api.flex >= 0:
        tagged = sorted((f for f in sd.fields if f.tag is not None), key=lambda f: f.tag)
        w('if (flex) {', 1)
        w('uint64_t ntags = kreader_uvarint(r);', 2)
        w()
        w('if (ntags > kreader_left(r))', 2)
        w('r->err = true;', 3)
        w('for (uint64_t t = 0; t < ntags && !r->err; t++) {', 2)
        w('struct kreader sub;', 3)
        w('uint64_t tag;', 3)
        w()
        w('if (kmsg__read_tag(r, &tag, &sub) != 0)', 3)
        w('break;', 4)
        if tagged:
            w('switch (tag) {', 3)
            for f in tagged:
                w('case %d:' % f.tag, 3)
                with_cond(w, field_cond(f, api), 4,
                          lambda ind, f=f: dec_field(w, f, api, '&sub', ind))
                w('break;', 4)
            w('default:', 3)
            w('break;', 4)
            w('}', 3)
            w('if (sub.err)', 3)
            w('r->err = true;', 4)
        w('}', 2)
        w('}', 1)
    w('return r->err ? SL_EPROTO : 0;', 1)
    w('}')
    w()


def flex_expr(api):
    if api.flex < 0:
        return 'false'
    if api.flex <= api.vmin:
        return 'true'
    return 'v >= %d' % api.flex


# ---- encode

WRITERS = {
    'bool': 'kbuf_put_i8(%s, %s ? 1 : 0);',
    'int8': 'kbuf_put_i8(%s, %s);',
    'int16': 'kbuf_put_i16(%s, %s);',
    'int32': 'kbuf_put_i32(%s, %s);',
    'int64': 'kbuf_put_i64(%s, %s);',
    'uint16': 'kbuf_put_i16(%s, (int16_t)%s);',
    'float64': 'kbuf_put_f64(%s, %s);',
    'uuid': 'kbuf_put(%s, %s, 16);',
}


def has_gaps(sd):
    """Whether sd's encoder can leave records out of the buffer (a records
    field, directly or in a nested struct, outside tagged fields, which
    are encoded into a buffer of their own)."""
    for f in sd.fields:
        if f.tag is not None:
            continue
        if f.kind == 'prim' and f.prim == 'records':
            return True
        if f.sdef is not None and has_gaps(f.sdef):
            return True
    return False


def enc_call(sd, B, x, G):
    """A call of struct sd's encoder; G is the gap list passed on ('g' or
    'NULL') when sd's encoder takes one."""
    if has_gaps(sd):
        return '%s_encode_in(%s, v, %s, %s);' % (sd.cname, B, x, G)
    return '%s_encode(%s, v, %s);' % (sd.cname, B, x)


def enc_prim(w, prim, x, B, nullable, ind, G='NULL'):
    if prim in WRITERS:
        w(WRITERS[prim] % (B, x), ind)
    elif prim == 'string':
        w('kmsg__write_str(%s, flex, %s, %s);' % (B, nullable, x), ind)
    elif prim == 'records' and G != 'NULL':
        w('kmsg__write_records(%s, flex, %s, %s, %s);' % (B, nullable, x, G), ind)
    else:
        w('kmsg__write_bytes(%s, flex, %s, %s);' % (B, nullable, x), ind)


def enc_field(w, f, api, B, ind, G='NULL', resp=False):
    x = 'm->' + f.name
    if f.kind == 'prim':
        enc_prim(w, f.prim, x, B, nullc(f, api), ind, G)
        # Every error a response carries, for the metrics registry.
        if resp and f.prim == 'int16' and f.name == 'error_code':
            w('if (%s != 0 && kmsg_resp_error_hook)' % x, ind)
            w('kmsg_resp_error_hook(%d, %s);' % (api.key, x), ind + 1)
    elif f.kind == 'struct':
        w(enc_call(f.sdef, B, '&' + x, G), ind)
    else:
        w('kmsg__write_count(%s, flex, %s, %s_count);' % (B, nullc(f, api), x), ind)
        w('for (int32_t i = 0; i < %s_count; i++)' % x, ind)
        if f.sdef is not None:
            w(enc_call(f.sdef, B, '&%s[i]' % x, G), ind + 1)
        else:
            enc_prim(w, f.prim, '%s[i]' % x, B, 'false', ind + 1)


def nondefault(f):
    x = 'm->' + f.name
    if f.kind == 'struct':
        return 'm->has_%s' % f.name
    if f.kind == 'array':
        return '%s_count %s' % (x, '>= 0' if f.default == 'null' else '!= 0')
    p = f.prim
    if p == 'uuid':
        return '!kmsg__uuid_is_zero(%s)' % x
    if p == 'string':
        if f.default == 'null':
            return '%s.len >= 0' % x
        if f.default is None:
            return '%s.len != 0' % x
        return '!kmsg__str_is(%s, %s, %s)' % (x, c_string(f.default), str_default_len(f.default))
    if p in ('bytes', 'records'):
        return '%s.len %s' % (x, '>= 0' if f.default == 'null' else '!= 0')
    if p == 'float64':
        return 'memcmp(&%s, &(double){ %s }, sizeof(double)) != 0' % (x, default_expr(f))
    return '%s != %s' % (x, default_expr(f))


def gen_encode(w, sd, api, public):
    gaps = has_gaps(sd)
    if gaps:
        # One encoder taking the gap list (NULL: records are copied), and
        # for a message the public entry points around it.
        if public:
            for name, G, extra in (('encode', 'NULL', ''),
                                   ('encode_gaps', 'g', ', struct kmsg_gaps *g')):
                w('void %s_%s(struct kbuf *b, int16_t v, const struct %s *m%s)'
                  % (sd.cname, name, sd.cname, extra))
                w('{')
                w('%s_encode_in(b, v, m, %s);' % (sd.cname, G), 1)
                w('}')
                w()
        w('static void %s_encode_in(struct kbuf *b, int16_t v, const struct %s *m, '
          'struct kmsg_gaps *g)' % (sd.cname, sd.cname))
    else:
        w('%svoid %s_encode(struct kbuf *b, int16_t v, const struct %s *m)'
          % ('' if public else 'static ', sd.cname, sd.cname))
    w('{')
    w('const bool flex = %s;' % flex_expr(api), 1)
    w()
    w('(void)flex;', 1)
    for f in sd.fields:
        if f.tag is not None:
            continue
        with_cond(w, field_cond(f, api), 1,
                  lambda ind, f=f: enc_field(w, f, api, 'b', ind, 'g' if gaps else 'NULL',
                                             getattr(sd, 'resp', False)))
    if api.flex >= 0:
        tagged = sorted((f for f in sd.fields if f.tag is not None), key=lambda f: f.tag)
        w('if (flex) {', 1)
        if not tagged:
            w('kbuf_put_uvarint(b, 0);', 2)
        else:
            w('uint32_t ntags = 0;', 2)
            w()
            for f in tagged:
                w('if (%s && %s)' % (field_cond(f, api), nondefault(f)), 2)
                w('ntags++;', 3)
            w('kbuf_put_uvarint(b, ntags);', 2)
            for f in tagged:
                w('if (%s && %s) {' % (field_cond(f, api), nondefault(f)), 2)
                w('struct kbuf t;', 3)
                w()
                w('kbuf_init(&t);', 3)
                enc_field(w, f, api, '&t', 3)
                w('kmsg__put_tagged(b, %d, &t);' % f.tag, 3)
                w('}', 2)
        w('}', 1)
    w('}')
    w()


# ---- test helpers: fill with deterministic values, compare

def fill_prim(w, prim, x, nullable, ind):
    if prim == 'bool':
        w('%s = (kmsg__rand(seed) & 1) != 0;' % x, ind)
    elif prim in ('int8', 'int16', 'int32', 'int64', 'uint16'):
        ct = PRIMS[prim][0]
        if prim == 'int64':
            w('%s = (int64_t)(((uint64_t)kmsg__rand(seed) << 32) | kmsg__rand(seed));' % x, ind)
        else:
            w('%s = (%s)kmsg__rand(seed);' % (x, ct), ind)
    elif prim == 'float64':
        w('%s = (double)(int32_t)kmsg__rand(seed) / 4.0;' % x, ind)
    elif prim == 'uuid':
        w('kmsg__fill_uuid(%s, seed);' % x, ind)
    elif prim == 'string':
        w('kmsg__fill_str(&%s, %s, a, seed);' % (x, nullable), ind)
    else:
        w('kmsg__fill_bytes(&%s, %s, a, seed);' % (x, nullable), ind)


def fill_field(w, f, api, ind):
    x = 'm->' + f.name
    if f.kind == 'prim':
        fill_prim(w, f.prim, x, nullc(f, api), ind)
    elif f.kind == 'struct':
        if f.tag is not None:
            w('m->has_%s = true;' % f.name, ind)
        w('%s_fill_test(&%s, v, a, seed);' % (f.sdef.cname, x), ind)
    else:
        w('%s_count = kmsg__fill_count(%s, seed);' % (x, nullc(f, api)), ind)
        w('if (%s_count > 0) {' % x, ind)
        w('%s = arena_alloc(a, (size_t)%s_count * sizeof(*%s));' % (x, x, x), ind + 1)
        w('if (!%s)' % x, ind + 1)
        w('%s_count = 0;' % x, ind + 2)
        w('for (int32_t i = 0; i < %s_count; i++) {' % x, ind + 1)
        if f.sdef is not None:
            w('%s_fill_test(&%s[i], v, a, seed);' % (f.sdef.cname, x), ind + 2)
        else:
            fill_prim(w, f.prim, '%s[i]' % x, 'false', ind + 2)
        w('}', ind + 1)
        w('}', ind)


def gen_fill(w, sd, api, public):
    w('%svoid %s_fill_test(struct %s *m, int16_t v, struct arena *a, uint32_t *seed)'
      % ('' if public else 'static ', sd.cname, sd.cname))
    w('{')
    w('const bool flex = %s;' % flex_expr(api), 1)
    w()
    w('(void)flex;', 1)
    w('%s_init(m);' % sd.cname, 1)
    for f in sd.fields:
        if f.tag is not None:
            # Tagged fields: present about half the time, so both paths run.
            def body(ind, f=f):
                w('if (kmsg__rand(seed) & 1) {', ind)
                fill_field(w, f, api, ind + 1)
                w('}', ind)
            with_cond(w, field_cond(f, api), 1, body)
        else:
            with_cond(w, field_cond(f, api), 1, lambda ind, f=f: fill_field(w, f, api, ind))
    w('}')
    w()


def eq_prim(prim, x, y):
    if prim == 'uuid':
        return 'memcmp(%s, %s, 16) != 0' % (x, y)
    if prim == 'string':
        return '!kmsg__kstr_same(%s, %s)' % (x, y)
    if prim in ('bytes', 'records'):
        return '!kmsg__kbytes_same(%s, %s)' % (x, y)
    if prim == 'float64':
        return 'memcmp(&%s, &%s, sizeof(double)) != 0' % (x, y)
    return '%s != %s' % (x, y)


def eq_field(w, f, api, ind):
    x, y = 'x->' + f.name, 'y->' + f.name
    if f.kind == 'prim':
        w('if (%s)' % eq_prim(f.prim, x, y), ind)
        w('return false;', ind + 1)
    elif f.kind == 'struct':
        if f.tag is not None:
            w('if (x->has_%s != y->has_%s)' % (f.name, f.name), ind)
            w('return false;', ind + 1)
            w('if (x->has_%s && !%s_equal(&%s, &%s, v))' % (f.name, f.sdef.cname, x, y), ind)
        else:
            w('if (!%s_equal(&%s, &%s, v))' % (f.sdef.cname, x, y), ind)
        w('return false;', ind + 1)
    else:
        w('if (%s_count != %s_count)' % (x, y), ind)
        w('return false;', ind + 1)
        w('for (int32_t i = 0; i < %s_count; i++) {' % x, ind)
        if f.sdef is not None:
            w('if (!%s_equal(&%s[i], &%s[i], v))' % (f.sdef.cname, x, y), ind + 1)
        else:
            w('if (%s)' % eq_prim(f.prim, '%s[i]' % x, '%s[i]' % y), ind + 1)
        w('return false;', ind + 2)
        w('}', ind)


def gen_equal(w, sd, api, public):
    w('%sbool %s_equal(const struct %s *x, const struct %s *y, int16_t v)'
      % ('' if public else 'static ', sd.cname, sd.cname, sd.cname))
    w('{')
    w('const bool flex = %s;' % flex_expr(api), 1)
    w()
    w('(void)flex;', 1)
    for f in sd.fields:
        with_cond(w, field_cond(f, api), 1, lambda ind, f=f: eq_field(w, f, api, ind))
    w('return true;', 1)
    w('}')
    w()


# ---- struct definitions

def c_field_decl(f):
    out = []
    if f.kind == 'prim':
        if f.prim == 'uuid':
            out.append('uint8_t %s[16];' % f.name)
        else:
            out.append('%s %s;' % (PRIMS[f.prim][0], f.name))
    elif f.kind == 'struct':
        if f.tag is not None:
            out.append('bool has_%s;' % f.name)
        out.append('struct %s %s;' % (f.sdef.cname, f.name))
    else:
        out.append('int32_t %s_count;' % f.name)
        if f.sdef is not None:
            out.append('struct %s *%s;' % (f.sdef.cname, f.name))
        elif f.prim == 'uuid':
            out.append('uint8_t (*%s)[16];' % f.name)
        else:
            out.append('%s *%s;' % (PRIMS[f.prim][0], f.name))
    return out


def gen_struct_def(w, sd):
    w('struct %s {' % sd.cname)
    if not sd.fields:
        w('char unused_; /* no fields in any version */', 1)
    for f in sd.fields:
        for d in c_field_decl(f):
            w(d, 1)
    w('};')
    w()


# ---------------------------------------------------------------- output

PRELUDE_C = r'''
/* ---- wire helpers shared by every message ---- */

/* A compact length is an unsigned varint holding length + 1; more than
 * INT32_MAX + 1 cannot be a valid length. */
__attribute__((unused)) static int64_t kmsg__read_compact_len(struct kreader *r)
{
	uint64_t u = kreader_uvarint(r);

	if (r->err)
		return 0;
	if (u > (uint64_t)INT32_MAX + 1) {
		r->err = true;
		return 0;
	}
	return (int64_t)u - 1;
}

__attribute__((unused)) static void kmsg__read_str(struct kreader *r, bool flex, bool nullable, kstr *out)
{
	int64_t n = flex ? kmsg__read_compact_len(r) : kreader_i16(r);
	const uint8_t *p;

	if (r->err)
		return;
	if (n < 0) {
		if (n == -1 && nullable)
			*out = KSTR_NULL;
		else
			r->err = true;
		return;
	}
	p = kreader_take(r, (size_t)n);
	if (!p)
		return;
	out->ptr = (const char *)p;
	out->len = (int32_t)n;
}

__attribute__((unused)) static void kmsg__read_bytes(struct kreader *r, bool flex, bool nullable, kbytes *out)
{
	int64_t n = flex ? kmsg__read_compact_len(r) : kreader_i32(r);
	const uint8_t *p;

	if (r->err)
		return;
	if (n < 0) {
		if (n == -1 && nullable)
			*out = KBYTES_NULL;
		else
			r->err = true;
		return;
	}
	p = kreader_take(r, (size_t)n);
	if (!p)
		return;
	out->ptr = p;
	out->len = (int32_t)n;
}

/* Reads an array count: -1 for null (only when nullable), else 0..n where
 * n elements of at least elem_min bytes fit in what is left and n is at
 * most SL_ARRAY_COUNT_MAX. On error sets r->err and returns 0. */
__attribute__((unused)) static int32_t kmsg__read_count(struct kreader *r, bool flex, bool nullable, size_t elem_min)
{
	int64_t n = flex ? kmsg__read_compact_len(r) : kreader_i32(r);

	if (r->err)
		return 0;
	if (n < 0) {
		if (n == -1 && nullable)
			return -1;
		goto bad;
	}
	if (n > SL_ARRAY_COUNT_MAX || (uint64_t)n * elem_min > kreader_left(r))
		goto bad;
	return (int32_t)n;
bad:
	r->err = true;
	return 0;
}

__attribute__((unused)) static void kmsg__read_uuid(struct kreader *r, uint8_t out[16])
{
	const uint8_t *p = kreader_take(r, 16);

	if (p)
		memcpy(out, p, 16);
}

/* Reads one tagged field's tag and size and hands its bytes to *sub. */
__attribute__((unused)) static int kmsg__read_tag(struct kreader *r, uint64_t *tag, struct kreader *sub)
{
	uint64_t size;
	const uint8_t *p;

	*tag = kreader_uvarint(r);
	size = kreader_uvarint(r);
	if (r->err || size > kreader_left(r)) {
		r->err = true;
		return SL_EPROTO;
	}
	p = kreader_take(r, (size_t)size);
	kreader_init(sub, p, (size_t)size);
	return 0;
}

/* Writers. A null where the version does not allow one is written as
 * empty, so the peer never sees a null it cannot parse. A classic string
 * longer than INT16_MAX is cut (handlers never build one). */
__attribute__((unused)) static void kmsg__write_str(struct kbuf *b, bool flex, bool nullable, kstr s)
{
	if (s.len < 0) {
		if (!nullable)
			s = (kstr){ "", 0 };
		else if (flex)
			kbuf_put_uvarint(b, 0);
		else
			kbuf_put_i16(b, -1);
		if (nullable)
			return;
	}
	if (!flex && s.len > INT16_MAX)
		s.len = INT16_MAX;
	if (flex)
		kbuf_put_uvarint(b, (uint64_t)s.len + 1);
	else
		kbuf_put_i16(b, (int16_t)s.len);
	kbuf_put(b, s.ptr, (size_t)s.len);
}

__attribute__((unused)) static void kmsg__write_bytes(struct kbuf *b, bool flex, bool nullable, kbytes s)
{
	if (s.len < 0) {
		if (!nullable)
			s = (kbytes){ NULL, 0 };
		else if (flex)
			kbuf_put_uvarint(b, 0);
		else
			kbuf_put_i32(b, -1);
		if (nullable)
			return;
	}
	if (flex)
		kbuf_put_uvarint(b, (uint64_t)s.len + 1);
	else
		kbuf_put_i32(b, s.len);
	kbuf_put(b, s.ptr, (size_t)s.len);
}

/* Records with a gap list: the length prefix goes into b, the bytes are
 * left out and listed as a gap at b->len (copied after all when shorter
 * than g->min_len, or when the list cannot grow). */
__attribute__((unused)) static void kmsg__write_records(struct kbuf *b, bool flex, bool nullable, kbytes s,
							struct kmsg_gaps *g)
{
	if (!g || s.len <= 0 || (size_t)s.len < g->min_len || b->oom) {
		kmsg__write_bytes(b, flex, nullable, s);
		return;
	}
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 16;
		struct kmsg_gap *v = realloc(g->v, cap * sizeof *v);

		if (!v) {
			kmsg__write_bytes(b, flex, nullable, s);
			return;
		}
		g->v = v;
		g->cap = cap;
	}
	if (flex)
		kbuf_put_uvarint(b, (uint64_t)s.len + 1);
	else
		kbuf_put_i32(b, s.len);
	g->v[g->n++] = (struct kmsg_gap){ b->len, s.ptr, (size_t)s.len };
	g->bytes += (size_t)s.len;
}

__attribute__((unused)) static void kmsg__write_count(struct kbuf *b, bool flex, bool nullable, int32_t n)
{
	if (n < 0 && !nullable)
		n = 0;
	if (n < 0)
		n = -1;
	if (flex)
		kbuf_put_uvarint(b, (uint64_t)((int64_t)n + 1));
	else
		kbuf_put_i32(b, n);
}

/* Appends one tagged field (tag, size, bytes) and frees t. */
__attribute__((unused)) static void kmsg__put_tagged(struct kbuf *b, uint32_t tag, struct kbuf *t)
{
	if (t->oom)
		b->oom = true;
	kbuf_put_uvarint(b, tag);
	kbuf_put_uvarint(b, t->len);
	kbuf_put(b, t->data, t->len);
	kbuf_free(t);
}

__attribute__((unused)) static bool kmsg__uuid_is_zero(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

__attribute__((unused)) static bool kmsg__str_is(kstr s, const char *lit, size_t len)
{
	return s.len >= 0 && (size_t)s.len == len && memcmp(s.ptr, lit, len) == 0;
}

/* ---- test helpers ---- */

__attribute__((unused)) static bool kmsg__kstr_same(kstr x, kstr y)
{
	if (x.len != y.len)
		return false;
	return x.len <= 0 || memcmp(x.ptr, y.ptr, (size_t)x.len) == 0;
}

__attribute__((unused)) static bool kmsg__kbytes_same(kbytes x, kbytes y)
{
	if (x.len != y.len)
		return false;
	return x.len <= 0 || memcmp(x.ptr, y.ptr, (size_t)x.len) == 0;
}

__attribute__((unused)) static uint32_t kmsg__rand(uint32_t *seed)
{
	/* xorshift32: deterministic, never 0 once seeded non-zero */
	uint32_t x = *seed ? *seed : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*seed = x;
	return x;
}

__attribute__((unused)) static void kmsg__fill_uuid(uint8_t u[16], uint32_t *seed)
{
	for (int i = 0; i < 16; i++)
		u[i] = (uint8_t)kmsg__rand(seed);
}

__attribute__((unused)) static void kmsg__fill_str(kstr *s, bool nullable, struct arena *a, uint32_t *seed)
{
	uint32_t n = kmsg__rand(seed) % 7;
	char *p;

	if (nullable && (kmsg__rand(seed) & 3) == 0) {
		*s = KSTR_NULL;
		return;
	}
	p = arena_alloc(a, n + 1);
	if (!p) {
		*s = (kstr){ "", 0 };
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		p[i] = (char)('a' + kmsg__rand(seed) % 26);
	*s = (kstr){ p, (int32_t)n };
}

__attribute__((unused)) static void kmsg__fill_bytes(kbytes *s, bool nullable, struct arena *a, uint32_t *seed)
{
	uint32_t n = kmsg__rand(seed) % 9;
	uint8_t *p;

	if (nullable && (kmsg__rand(seed) & 3) == 0) {
		*s = KBYTES_NULL;
		return;
	}
	p = arena_alloc(a, n);
	if (!p) {
		*s = (kbytes){ NULL, 0 };
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)kmsg__rand(seed);
	*s = (kbytes){ p, (int32_t)n };
}

__attribute__((unused)) static int32_t kmsg__fill_count(bool nullable, uint32_t *seed)
{
	if (nullable && kmsg__rand(seed) % 5 == 0)
		return -1;
	return (int32_t)(kmsg__rand(seed) % 3);
}
'''

HEADER_TOP = '''/* kmsg.h — GENERATED by tools/gen_proto.py from the src/proto/defs files.
 * Do not edit; change the .def files (docs/protocol-dsl.md).
 *
 * For every api: KMSG_<API>_KEY/_MIN_VERSION/_MAX_VERSION/_FIRST_FLEXIBLE,
 * struct kmsg_<api>_req / _resp (and nested structs), and per message:
 *   void <msg>_init(struct <msg> *m);      sets every default
 *   int  <msg>_decode(struct kreader *r, int16_t version,
 *                     struct <msg> *m, struct arena *a);
 *        0, SL_EPROTO (malformed), SL_ENOMEM (arena limit) or
 *        SL_EUNSUPPORTED (version outside the api's range). Arrays live
 *        in the arena; kstr/kbytes are views into r's buffer, valid while
 *        that buffer is. Trailing bytes after the body are not an error.
 *   void <msg>_encode(struct kbuf *b, int16_t version, const struct <msg> *m);
 *        appends the body; fields outside the version are not written,
 *        a null where the version allows none is written as empty.
 *   void <msg>_encode_gaps(struct kbuf *b, int16_t version,
 *                          const struct <msg> *m, struct kmsg_gaps *g);
 *        only for messages with records: the same body, except that the
 *        records' bytes are not copied into b but listed in g (see there).
 *   void <msg>_fill_test(...) / bool <msg>_equal(...): for tests only.
 */
#ifndef SLUICE_KMSG_H
#define SLUICE_KMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"

/* Called by every response encoder for each error_code field it writes
 * that is not 0, with the api's key (NULL: nobody listens; `sluice
 * serve` counts them per api and code, metrics/metrics.h). Loop thread
 * only, like the encoders' callers. */
extern void (*kmsg_resp_error_hook)(int16_t api_key, int16_t error_code);

struct kmsg_api_desc {
	int16_t key;
	const char *name;
	int16_t min_version, max_version;
	int16_t first_flexible; /* -1: no flexible version */
};

/* Records an encoder left out of its buffer (<msg>_encode_gaps): the
 * wire bytes are the buffer with gap i's len bytes at ptr inserted at
 * buffer offset at (ascending; the records' length prefix is just
 * before at, in the buffer). Records shorter than min_len are copied.
 * v is malloc'd and grows as needed (free() it); bytes is the sum of the
 * gaps' lengths. The bytes gaps point to must stay as they are until
 * they have been written. */
struct kmsg_gap {
	size_t at;
	const uint8_t *ptr;
	size_t len;
};

struct kmsg_gaps {
	struct kmsg_gap *v;
	size_t n, cap;
	size_t bytes;
	size_t min_len;
};

/* Every described api, sorted by key. */
extern const struct kmsg_api_desc kmsg_api_descs[];
extern const size_t kmsg_api_desc_count;
/* The api with that key, or NULL. */
const struct kmsg_api_desc *kmsg_api_find(int16_t key);

/* Version-generic entry points for every api (dispatch, tests, fuzzing).
 * m points at the api's struct kmsg_<api>_req or _resp. */
struct kmsg_codec {
	size_t size;
	void (*init)(void *m);
	int (*decode)(struct kreader *r, int16_t version, void *m, struct arena *a);
	void (*encode)(struct kbuf *b, int16_t version, const void *m);
	void (*fill_test)(void *m, int16_t version, struct arena *a, uint32_t *seed);
	bool (*equal)(const void *x, const void *y, int16_t version);
};

struct kmsg_api_codec {
	int16_t key;
	struct kmsg_codec req, resp;
};

/* Same order as kmsg_api_descs. */
extern const struct kmsg_api_codec kmsg_api_codecs[];
/* The codecs of the api with that key, or NULL. */
const struct kmsg_api_codec *kmsg_api_codec_find(int16_t key);
'''


def generate(apis, outdir):
    h = W()
    c = W()
    for line in HEADER_TOP.rstrip('\n').split('\n'):
        h.lines.append(line)
    h()
    c('/* kmsg.c — GENERATED by tools/gen_proto.py from the src/proto/defs files.')
    c(' * Do not edit; change the .def files (docs/protocol-dsl.md). */')
    c('#include "kmsg.h"')
    c()
    c('#include <stdlib.h>')
    c('#include <string.h>')
    c()
    c('#include "base/limits.h"')
    c()
    c('void (*kmsg_resp_error_hook)(int16_t api_key, int16_t error_code);')
    for line in PRELUDE_C.rstrip('\n').split('\n'):
        c.lines.append(line)
    c()

    for api in apis:
        up = api.snake.upper()
        h('/* ---- %s (key %d, versions %d-%d) ---- */' % (api.name, api.key, api.vmin, api.vmax))
        h()
        h('#define KMSG_%s_KEY %d' % (up, api.key))
        h('#define KMSG_%s_MIN_VERSION %d' % (up, api.vmin))
        h('#define KMSG_%s_MAX_VERSION %d' % (up, api.vmax))
        h('#define KMSG_%s_FIRST_FLEXIBLE %d' % (up, api.flex))
        h()
        tops = (api.req, api.resp)
        for sd in api.structs:
            gen_struct_def(h, sd)
        for sd in api.structs:
            h('void %s_init(struct %s *m);' % (sd.cname, sd.cname))
        for sd in tops:
            h('int %s_decode(struct kreader *r, int16_t version, struct %s *m, struct arena *a);'
              % (sd.cname, sd.cname))
            h('void %s_encode(struct kbuf *b, int16_t version, const struct %s *m);'
              % (sd.cname, sd.cname))
            if has_gaps(sd):
                h('void %s_encode_gaps(struct kbuf *b, int16_t version, const struct %s *m, '
                  'struct kmsg_gaps *g);' % (sd.cname, sd.cname))
            h('void %s_fill_test(struct %s *m, int16_t version, struct arena *a, uint32_t *seed);'
              % (sd.cname, sd.cname))
            h('bool %s_equal(const struct %s *x, const struct %s *y, int16_t version);'
              % (sd.cname, sd.cname, sd.cname))
        h()

        c('/* ---- %s ---- */' % api.name)
        c()
        for sd in api.structs:
            if sd in tops:
                continue
            n = sd.cname
            c('static int %s_decode(struct kreader *r, int16_t v, struct %s *m, struct arena *a);'
              % (n, n))
            if has_gaps(sd):
                c('static void %s_encode_in(struct kbuf *b, int16_t v, const struct %s *m, '
                  'struct kmsg_gaps *g);' % (n, n))
            else:
                c('static void %s_encode(struct kbuf *b, int16_t v, const struct %s *m);' % (n, n))
            c('static void %s_fill_test(struct %s *m, int16_t v, struct arena *a, uint32_t *seed);'
              % (n, n))
            c('static bool %s_equal(const struct %s *x, const struct %s *y, int16_t v);'
              % (n, n, n))
        for sd in tops:
            if has_gaps(sd):
                c('static void %s_encode_in(struct kbuf *b, int16_t v, const struct %s *m, '
                  'struct kmsg_gaps *g);' % (sd.cname, sd.cname))
        c()
        for sd in api.structs:
            public = sd in tops
            gen_init(c, sd, api, True)
            gen_decode(c, sd, api, public)
            gen_encode(c, sd, api, public)
            gen_fill(c, sd, api, public)
            gen_equal(c, sd, api, public)
        # void* wrappers for the codec table
        for sd in tops:
            n = sd.cname
            c('static void %s_init_g(void *m)' % n)
            c('{')
            c('%s_init(m);' % n, 1)
            c('}')
            c()
            c('static int %s_decode_g(struct kreader *r, int16_t v, void *m, struct arena *a)' % n)
            c('{')
            c('return %s_decode(r, v, m, a);' % n, 1)
            c('}')
            c()
            c('static void %s_encode_g(struct kbuf *b, int16_t v, const void *m)' % n)
            c('{')
            c('%s_encode(b, v, m);' % n, 1)
            c('}')
            c()
            c('static void %s_fill_test_g(void *m, int16_t v, struct arena *a, uint32_t *seed)' % n)
            c('{')
            c('%s_fill_test(m, v, a, seed);' % n, 1)
            c('}')
            c()
            c('static bool %s_equal_g(const void *x, const void *y, int16_t v)' % n)
            c('{')
            c('return %s_equal(x, y, v);' % n, 1)
            c('}')
            c()

    h('#endif')

    c('const struct kmsg_api_desc kmsg_api_descs[] = {')
    for api in apis:
        c('{ %d, "%s", %d, %d, %d },' % (api.key, api.name, api.vmin, api.vmax, api.flex), 1)
    c('};')
    c()
    c('const size_t kmsg_api_desc_count = %d;' % len(apis))
    c()

    def codec(sd):
        n = sd.cname
        return ('{ sizeof(struct %s), %s_init_g, %s_decode_g, %s_encode_g, '
                '%s_fill_test_g, %s_equal_g }' % (n, n, n, n, n, n))
    c('const struct kmsg_api_codec kmsg_api_codecs[] = {')
    for api in apis:
        c('{ %d,' % api.key, 1)
        c('%s,' % codec(api.req), 2)
        c('%s },' % codec(api.resp), 2)
    c('};')
    c()
    for what, table in (('desc', 'kmsg_api_descs'), ('codec', 'kmsg_api_codecs')):
        ret = 'kmsg_api_desc' if what == 'desc' else 'kmsg_api_codec'
        fn = 'kmsg_api_find' if what == 'desc' else 'kmsg_api_codec_find'
        c('const struct %s *%s(int16_t key)' % (ret, fn))
        c('{')
        c('switch (key) {', 1)
        for i, api in enumerate(apis):
            c('case %d:' % api.key, 1)
            c('return &%s[%d];' % (table, i), 2)
        c('default:', 1)
        c('return NULL;', 2)
        c('}', 1)
        c('}')
        c()

    os.makedirs(outdir, exist_ok=True)
    for name, w in (('kmsg.h', h), ('kmsg.c', c)):
        path = os.path.join(outdir, name)
        text = w.text()
        try:
            with open(path, encoding='utf-8') as fh:
                if fh.read() == text:
                    continue
        except OSError:
            pass
        tmp = path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as fh:
            fh.write(text)
        os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('-o', dest='outdir', required=True)
    ap.add_argument('defs', nargs='+')
    args = ap.parse_args()
    apis = []
    try:
        for path in sorted(args.defs):
            parse_file(path, apis)
        keys = {}
        names = {}
        for api in apis:
            if api.key in keys:
                raise DefError(api.where, 'api key %d already used at %s:%d'
                               % (api.key, keys[api.key].where[0], keys[api.key].where[1]))
            if api.snake in names:
                raise DefError(api.where, 'api %s described twice' % api.name)
            keys[api.key] = api
            names[api.snake] = api
        apis.sort(key=lambda a: a.key)
        cnames = {}
        for api in apis:
            resolve(api, cnames)
    except DefError as e:
        print(str(e), file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print('gen_proto: %s' % e, file=sys.stderr)
        sys.exit(1)
    generate(apis, args.outdir)


if __name__ == '__main__':
    main()
