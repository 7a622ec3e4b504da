"""The names a config ``name`` must not take, because of what it becomes (docs/architecture.md §3).

A config's ``name`` is the Verilog module ``<name>`` (file ``<name>.v``, FuseSoC core
``<name>.core``), the AXI4-Stream wrapper module ``<name>_axis`` (``<name>_axis.v``) that
instantiates it next to its own ports and wires, the HLS C++ top function ``<name>`` declared at
file scope next to everything the HLS templates and the headers they include declare (files
``<name>.h``, ``<name>.cpp``, ``<name>_tb.cpp``, executable ``<name>_csim``, beside
``hwgen_hls.h``), and the output folder ``<name>/``. :func:`name_problem` checks a name against
all of them at once, so a config that loads can be generated, linted, simulated, synthesized and
compiled as HLS C++.

The tables are the reference for each kind of clash; ``tests/test_hostile_config.py`` holds them
to the generated files (every identifier of the rendered HLS C++ and every macro and global type
the system C++ library gives those files must be refused).
"""

from __future__ import annotations

import re

__all__ = ["VERILOG_KEYWORDS", "VERILOG_NAMES", "CPP_KEYWORDS", "C_LIBRARY_NAMES", "HLS_NAMES",
           "name_problem"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Every keyword of Verilog (IEEE 1364-2005) and SystemVerilog (IEEE 1800-2017, Annex B, which
#: includes the 1364 ones): a module name must not be one.
VERILOG_KEYWORDS = _words("""
    accept_on alias always always_comb always_ff always_latch and assert assign assume automatic
    before begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle
    checker class clocking cmos config const constraint context continue cover covergroup
    coverpoint cross deassign default defparam design disable dist do edge else end endcase
    endchecker endclass endclocking endconfig endfunction endgenerate endgroup endinterface
    endmodule endpackage endprimitive endprogram endproperty endspecify endsequence endtable
    endtask enum event eventually expect export extends extern final first_match for force foreach
    forever fork forkjoin function generate genvar global highz0 highz1 if iff ifnone ignore_bins
    illegal_bins implements implies import incdir include initial inout input inside instance int
    integer interconnect interface intersect join join_any join_none large let liblist library
    local localparam logic longint macromodule matches medium modport module nand negedge nettype
    new nexttime nmos nor noshowcancelled not notif0 notif1 null or output package packed
    parameter pmos posedge primitive priority program property protected pull0 pull1 pulldown
    pullup pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence rcmos real
    realtime ref reg reject_on release repeat restrict return rnmos rpmos rtran rtranif0 rtranif1
    s_always s_eventually s_nexttime s_until s_until_with scalared sequence shortint shortreal
    showcancelled signed small soft solve specify specparam static string strong strong0 strong1
    struct super supply0 supply1 sync_accept_on sync_reject_on table tagged task this throughout
    time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg type
    typedef union unique unique0 unsigned until until_with untyped use uwire var vectored virtual
    void wait wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
""")

#: The core's clock and reset ports, and the AXI4-Stream wrapper's own ports and wires
#: (templates/verilog/axis_wrapper.v.j2, hwgen/emit/axis.py): the wrapper declares them in the
#: scope where it instantiates the core by its module name. Stream ports ``<stream>__*`` and
#: ``perf__*`` contain ``__``, which C++ already forbids; the per-stream wrapper names follow
#: :data:`_WRAPPER_STREAM_RE`.
VERILOG_NAMES = _words("clk rst aclk aresetn core core_rst unused_inputs")

#: The wrapper's per-stream ports ``s_axis_<stream>_t*``, ``m_axis_<stream>_t*`` and wires
#: ``core_<stream>_payload/valid/ready``, for any stream name.
_WRAPPER_STREAM_RE = re.compile(r"(?:[sm]_axis_\w+_t(?:data|valid|ready|last)"
                                r"|core_\w+_(?:payload|valid|ready))\Z")

#: C++20 keywords and alternative operator tokens. C++ also reserves the names that contain ``__``
#: or start with ``_`` and an upper-case letter; :func:`name_problem` refuses every name that
#: contains ``__`` or starts with ``_``, since the name also becomes upper-case include guards.
CPP_KEYWORDS = _words("""
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
    char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
    co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
    extern false float for friend goto if inline int long mutable namespace new noexcept not
    not_eq nullptr operator or or_eq private protected public register reinterpret_cast requires
    return short signed sizeof static static_assert static_cast struct switch template this
    thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
    wchar_t while xor xor_eq
""")

_INT_TYPES = ("INT8", "INT16", "INT32", "INT64", "INT_LEAST8", "INT_LEAST16", "INT_LEAST32",
              "INT_LEAST64", "INT_FAST8", "INT_FAST16", "INT_FAST32", "INT_FAST64", "INTMAX",
              "INTPTR")

#: What the C and C++ libraries declare at file scope for the generated files (<cstdint>,
#: <cstdio> and what <string>, <vector>, <deque>, <stdexcept> and <exception> bring along with
#: glibc and libstdc++; <cassert> and <climits> for the vendor HLS headers): macros, which would
#: rewrite the top function's name; types and objects, which a function cannot share a name with;
#: the standard <stdio.h> and <stdlib.h> functions and ``main``, which the C standard reserves at
#: file scope.
C_LIBRARY_NAMES = _words("""
    NULL offsetof assert NDEBUG errno stdin stdout stderr EOF WEOF BUFSIZ FILENAME_MAX FOPEN_MAX
    TMP_MAX L_tmpnam L_ctermid L_cuserid P_tmpdir SEEK_SET SEEK_CUR SEEK_END SEEK_DATA SEEK_HOLE
    RENAME_EXCHANGE RENAME_NOREPLACE RENAME_WHITEOUT EXIT_SUCCESS EXIT_FAILURE RAND_MAX MB_CUR_MAX
    alloca PTRDIFF_MIN PTRDIFF_MAX PTRDIFF_WIDTH SIG_ATOMIC_MIN SIG_ATOMIC_MAX SIG_ATOMIC_WIDTH
    SIZE_MAX SIZE_WIDTH WCHAR_MIN WCHAR_MAX WCHAR_WIDTH WINT_MIN WINT_MAX WINT_WIDTH
    CHAR_BIT CHAR_MIN CHAR_MAX SCHAR_MIN SCHAR_MAX UCHAR_MAX SHRT_MIN SHRT_MAX USHRT_MAX INT_MIN
    INT_MAX UINT_MAX LONG_MIN LONG_MAX ULONG_MAX LLONG_MIN LLONG_MAX ULLONG_MAX MB_LEN_MAX
    WCONTINUED WEXITED WEXITSTATUS WIFCONTINUED WIFEXITED WIFSIGNALED WIFSTOPPED WNOHANG WNOWAIT
    WSTOPPED WSTOPSIG WTERMSIG WUNTRACED FD_CLR FD_ISSET FD_SET FD_SETSIZE FD_ZERO NFDBITS
    BIG_ENDIAN LITTLE_ENDIAN PDP_ENDIAN BYTE_ORDER be16toh be32toh be64toh le16toh le32toh le64toh
    htobe16 htobe32 htobe64 htole16 htole32 htole64 LC_GLOBAL_LOCALE linux unix i386

    E2BIG EACCES EADDRINUSE EADDRNOTAVAIL EADV EAFNOSUPPORT EAGAIN EALREADY EBADE EBADF EBADFD
    EBADMSG EBADR EBADRQC EBADSLT EBFONT EBUSY ECANCELED ECHILD ECHRNG ECOMM ECONNABORTED
    ECONNREFUSED ECONNRESET EDEADLK EDEADLOCK EDESTADDRREQ EDOM EDOTDOT EDQUOT EEXIST EFAULT EFBIG
    EHOSTDOWN EHOSTUNREACH EHWPOISON EIDRM EILSEQ EINPROGRESS EINTR EINVAL EIO EISCONN EISDIR
    EISNAM EKEYEXPIRED EKEYREJECTED EKEYREVOKED EL2HLT EL2NSYNC EL3HLT EL3RST ELIBACC ELIBBAD
    ELIBEXEC ELIBMAX ELIBSCN ELNRNG ELOOP EMEDIUMTYPE EMFILE EMLINK EMSGSIZE EMULTIHOP
    ENAMETOOLONG ENAVAIL ENETDOWN ENETRESET ENETUNREACH ENFILE ENOANO ENOBUFS ENOCSI ENODATA
    ENODEV ENOENT ENOEXEC ENOKEY ENOLCK ENOLINK ENOMEDIUM ENOMEM ENOMSG ENONET ENOPKG ENOPROTOOPT
    ENOSPC ENOSR ENOSTR ENOSYS ENOTBLK ENOTCONN ENOTDIR ENOTEMPTY ENOTNAM ENOTRECOVERABLE ENOTSOCK
    ENOTSUP ENOTTY ENOTUNIQ ENXIO EOPNOTSUPP EOVERFLOW EOWNERDEAD EPERM EPFNOSUPPORT EPIPE EPROTO
    EPROTONOSUPPORT EPROTOTYPE ERANGE EREMCHG EREMOTE EREMOTEIO ERESTART ERFKILL EROFS ESHUTDOWN
    ESOCKTNOSUPPORT ESPIPE ESRCH ESRMNT ESTALE ESTRPIPE ETIME ETIMEDOUT ETOOMANYREFS ETXTBSY
    EUCLEAN EUNATCH EUSERS EWOULDBLOCK EXDEV EXFULL

    FILE fpos_t fpos64_t size_t ssize_t ptrdiff_t max_align_t nullptr_t div_t ldiv_t lldiv_t
    mbstate_t wint_t locale_t lconv va_list clock_t clockid_t time_t timer_t timespec timeval tm
    suseconds_t useconds_t blkcnt_t blkcnt64_t blksize_t caddr_t daddr_t dev_t fd_mask fd_set
    fsblkcnt_t fsblkcnt64_t fsfilcnt_t fsfilcnt64_t fsid_t gid_t id_t ino_t ino64_t key_t loff_t
    mode_t nlink_t off_t off64_t pid_t quad_t u_quad_t register_t sigset_t uid_t u_char u_short
    u_int u_long uint ulong ushort u_int8_t u_int16_t u_int32_t u_int64_t pthread_t
    pthread_attr_t pthread_barrier_t pthread_barrierattr_t pthread_cond_t pthread_condattr_t
    pthread_key_t pthread_mutex_t pthread_mutexattr_t pthread_once_t pthread_rwlock_t
    pthread_rwlockattr_t pthread_spinlock_t comparison_fn_t cookie_io_functions_t
    cookie_read_function_t cookie_write_function_t cookie_seek_function_t cookie_close_function_t
    drand48_data random_data error_t obstack program_invocation_name program_invocation_short_name

    main remove rename tmpfile tmpnam fclose fflush fopen freopen setbuf setvbuf fprintf fscanf
    printf scanf snprintf sprintf sscanf vfprintf vfscanf vprintf vscanf vsnprintf vsprintf
    vsscanf fgetc fgets fputc fputs getc getchar putc putchar puts ungetc fread fwrite fgetpos
    fseek fsetpos ftell rewind clearerr feof ferror perror atof atoi atol atoll strtod strtof
    strtold strtol strtoll strtoul strtoull rand srand aligned_alloc calloc free malloc realloc
    abort atexit at_quick_exit exit quick_exit getenv system bsearch qsort abs labs llabs div ldiv
    lldiv mblen mbtowc wctomb mbstowcs wcstombs
""") | frozenset(
    # <cstdint>: the integer types and their limit and constant macros.
    [f"{u}{t.lower()}_t" for t in _INT_TYPES for u in ("", "u")]
    + [f"{u}{t}_{what}" for t in _INT_TYPES for u in ("", "U") for what in ("MIN", "MAX", "WIDTH")]
    + [f"{u}{t}_C" for t in ("INT8", "INT16", "INT32", "INT64", "INTMAX") for u in ("", "U")]
    # <clocale>: the locale categories and their masks.
    + [f"LC_{category}{mask}" for category in (
        "ADDRESS", "ALL", "COLLATE", "CTYPE", "IDENTIFICATION", "MEASUREMENT", "MESSAGES",
        "MONETARY", "NAME", "NUMERIC", "PAPER", "TELEPHONE", "TIME") for mask in ("", "_MASK")])

#: Every other identifier of the generated HLS C++ (templates/hls/hwgen_hls.h.j2 and
#: templates/hls/<engine>/*.j2, outside comments, strings and pragmas): namespaces, types,
#: functions, constants, loop labels, parameters and locals, some of which share a scope with
#: the top function (``using namespace`` of the config constants; the testbenches' locals next to
#: the call of the top function).
HLS_NAMES = _words("""
    a abs_k abs_q abs_value acc ACC_BITS acc_ovf accumulate ACT_BITS ACT_SIGNED activation active
    acts argc argv b beat below best_est best_key bits build_tmasks c chosen CHUNK CHUNK_MASK
    CHUNKS chunks clamped clear clear_masks clear_tmasks CODE_BITS COLS compress compress_sample
    corr CORR_BITS corr_ovf count Cursor DATA_BITS DATAFLOW DECODE den deque differ distance
    divide_floor done dot e e_frac e_int empty error est EST_BITS EST_SCORE_BITS exact exception
    EXP_BITS EXP_FRAC_BITS EXP_INT_LIMIT EXP_LUT EXP_MULT EXP_SHIFT EXP_VALUE_BITS expected
    expected_path EXPONENT_BITS expv fifo_ file fire fire_group fired first floor_shift front g
    GLOBAL_TOKENS GROUPS groups_loop half HEAD_DIM hi hls hwgen HWGEN_HLS_H HWGEN_NATIVE_CSIM i
    idx in IN_FORMAT IN_NEURONS index j j0 job JOIN join_group JOIN_IMPL K k k4 k_mem keep l LAGGY_ADDERS
    LANES last LAST_CHUNK_MASK latch LEAK_ROUND LEAK_SHIFT len lengths lif listed lo load_chunks
    load_groups load_indices load_mask load_pes load_values load_weights low lowest64 LUT_SIZE M m
    MARGIN mask mask_bits MASK_WORDS match MAX_LEN MAX_SELECTED MAXABS_BITS maxabs_k maxabs_q
    membrane_ovf MIN_SPIKES move N n neg next nonzero num o out OUT_BITS OUT_FORMAT OUT_NEURONS
    output_path outputs p product shift_code_t shifted
    pairs path PES pop_front popcount64 pos pos_ PRESET PROB_BITS PROB_SHIFT PROB_VALUE_BITS
    pseudo psum push_back q q4 Q_MAX q_mem QUANT_HALF QUANT_NUMERATOR quantize r rank rank_below
    raw read read_ints recip RECIP_BITS recip_k recip_q RECIP_SHIFT rem report results ROUND_ADD
    rounded row row_max row_recip ROW_RECIP_BITS ROW_RECIP_NUMERATOR ROW_RECIP_SHIFT row_sum ROWS
    rows runtime_error s samples samples_loop saturate_signed score SCORE_BITS segments sel
    sequences shift shr sign size smask spike_t spikes std step steps stimulus stored stream
    stream_rows SUM_BITS svals T t take_lowest THRESHOLD tiles TIMESTEPS tmask token tokens TOPK
    topk_insert u U_BITS unsigned_bits v v_mem valid value values values_ vector w weight
    WEIGHT_BITS weight_t weights what WINDOW wmask word WORD_BITS word_t wrap_signed write wvals x
    y z Z_BITS
""")

#: Names that clash in any letter case: the HLS support header ``hwgen_hls.h`` (on a
#: case-insensitive file system) and its include guard ``HWGEN_HLS_H``, which the upper-case
#: guards of the kernel headers (``<NAME>_H``, ``HWGEN_<NAME>_H``) would repeat.
_ANY_CASE = frozenset({"hwgen_hls", "hls"})

#: Device names Windows reserves in every folder, with any extension and in any letter case.
_DEVICE_NAMES = frozenset({"con", "prn", "aux", "nul"} | {f"{port}{i}" for port in ("com", "lpt")
                                                         for i in range(10)})


def name_problem(name: str) -> str | None:
    """What ``name`` must be instead, when a generated file cannot use it; None when it can.

    Parameters
    ----------
    name : str
        An identifier (``[A-Za-z_][A-Za-z0-9_]*``, checked by the caller).

    Returns
    -------
    str or None
        The rule ``name`` breaks, worded as what is expected (``"a name that is not a Verilog
        keyword"``), ready for :func:`hwgen.validate.invalid`; None when every output can use it.
    """
    if name in VERILOG_KEYWORDS:
        return "a name that is not a Verilog keyword"
    if name.startswith("_") or "__" in name:
        return "a name that neither starts with _ nor contains __ (C and C++ reserve them)"
    if name in VERILOG_NAMES or _WRAPPER_STREAM_RE.match(name):
        return ("a name that is not a port or wire of the core or its AXI4-Stream wrapper (clk, "
                "rst, aclk, aresetn, core, core_rst, unused_inputs, s_axis_*_t*, m_axis_*_t*, "
                "core_*_payload/valid/ready)")
    if name in CPP_KEYWORDS:
        return "a name that is not a C++ keyword"
    if name in C_LIBRARY_NAMES:
        return ("a name that is not a C or C++ library name the generated C++ sees (such as NULL, "
                "EOF, errno, stdout, printf, exit, main, size_t, uint32_t, INT32_MAX)")
    if name in HLS_NAMES:
        return ("a name that the generated HLS C++ does not use itself (such as hls, hwgen, "
                "Cursor, ROWS, weights, out, t)")
    lower = name.lower()
    if lower in _ANY_CASE:
        return ("a name other than hwgen_hls or hls in any letter case (the HLS support header "
                "hwgen_hls.h and its include guard HWGEN_HLS_H)")
    if lower in _DEVICE_NAMES:
        return ("a name that is not a Windows device name (CON, PRN, AUX, NUL, COM0-COM9, "
                "LPT0-LPT9 in any letter case): it names files")
    return None
