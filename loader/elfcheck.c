/* SPDX-License-Identifier: MIT */
/*
 * Inspection of a module's ELF image with libelf before anything of it runs:
 * the AIK note, and the properties that make a shared object safe to map
 * (no executable stack, no text relocations, only allowed DT_NEEDED). The
 * dynamic section is read through PT_DYNAMIC, as ld.so reads it, not through
 * section headers that the loader never consults.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gelf.h>
#include <libelf.h>

#include "common/checked.h"
#include "common/error.h"
#include "loader/internal.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#define HOST_LDSO "ld-linux-x86-64.so.2"
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#define HOST_LDSO "ld-linux-aarch64.so.1"
#else
#error "elfcheck.c: add this architecture's EM_* and ld.so name"
#endif

#if __SIZEOF_POINTER__ == 8
#define HOST_CLASS ELFCLASS64
#else
#define HOST_CLASS ELFCLASS32
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_DATA ELFDATA2LSB
#else
#define HOST_DATA ELFDATA2MSB
#endif

#define ALL_KINDS 0xffffffffu
#define KIND_BIT(k) (1u << (k))

/*
 * DT_NEEDED allow-list. Modules reach the host only through the vtables they
 * are handed, so they need nothing but the C runtime; backend plug-ins may
 * also talk to the Vulkan loader. Anything else (libaik itself, libcrypto,
 * ...) means the module was linked wrong or brings code the loader never
 * verified.
 */
static const struct {
    const char *soname;
    uint32_t kinds; /* KIND_BIT(aik_module_kind) mask */
} needed_allow[] = {
    { "libc.so.6", ALL_KINDS },
    { "libm.so.6", ALL_KINDS },
    { "libpthread.so.0", ALL_KINDS },
    { "libdl.so.2", ALL_KINDS },
    { HOST_LDSO, ALL_KINDS },
    { "libgcc_s.so.1", ALL_KINDS },
    { "libvulkan.so.1", KIND_BIT(AIK_MODULE_BACKEND) },
#if defined(__SANITIZE_ADDRESS__)
    /* A sanitizer build of the host also builds its modules with the
     * sanitizer runtimes, which the host process has already loaded. */
    { "libasan.so.8", ALL_KINDS },
    { "libubsan.so.1", ALL_KINDS },
#endif
};

bool aik_elf_needed_allowed(const char *soname, uint32_t kind)
{
    if (!soname || kind >= 32)
        return false;
    for (size_t i = 0; i < sizeof(needed_allow) / sizeof(needed_allow[0]); i++)
        if (strcmp(needed_allow[i].soname, soname) == 0)
            return (needed_allow[i].kinds & KIND_BIT(kind)) != 0;
    return false;
}

static Elf *open_image(const void *image, size_t len, aik_error *err)
{
    Elf *e;

    if (elf_version(EV_CURRENT) == EV_NONE) {
        aik_fail(err, -EIO, "elf", "libelf initialization failed: %s", elf_errmsg(-1));
        return NULL;
    }
    /* libelf converts foreign-byte-order files in place; only hand it native
     * ones (checked by the callers through check_ident first). elf_memory
     * does not write to a native image. */
    e = elf_memory((char *)(uintptr_t)image, len);
    if (!e || elf_kind(e) != ELF_K_ELF) {
        aik_fail(err, -ENOEXEC, "elf.header", "not an ELF object: %s", elf_errmsg(-1));
        if (e)
            elf_end(e);
        return NULL;
    }
    return e;
}

static int check_ident(const void *image, size_t len, aik_error *err)
{
    const unsigned char *id = image;

    if (!image || len < EI_NIDENT)
        return aik_fail(err, -ENOEXEC, "elf.header.e_ident", "file of %zu bytes is too short for an ELF header", len);
    if (memcmp(id, ELFMAG, SELFMAG) != 0)
        return aik_fail(err, -ENOEXEC, "elf.header.e_ident", "bad ELF magic");
    if (id[EI_CLASS] != HOST_CLASS)
        return aik_fail(err, -ENOEXEC, "elf.header.e_ident", "ELF class %u does not match the host's %u",
                        id[EI_CLASS], HOST_CLASS);
    if (id[EI_DATA] != HOST_DATA)
        return aik_fail(err, -ENOEXEC, "elf.header.e_ident", "byte order %u does not match the host's %u",
                        id[EI_DATA], HOST_DATA);
    if (id[EI_VERSION] != EV_CURRENT)
        return aik_fail(err, -ENOEXEC, "elf.header.e_ident", "ELF version %u unsupported", id[EI_VERSION]);
    return 0;
}

/* Find the single AIK note among the SHT_NOTE sections. */
static int find_note(Elf *e, aik_module_note_desc *ret, aik_error *err)
{
    Elf_Scn *scn = NULL;
    bool found = false;
    aik_module_note_desc d;
    size_t shnum;

    if (elf_getshdrnum(e, &shnum) < 0)
        return aik_fail(err, -ENOEXEC, "elf.note", "cannot read section headers: %s", elf_errmsg(-1));
    while ((scn = elf_nextscn(e, scn))) {
        GElf_Shdr sh;
        Elf_Data *data;
        size_t off = 0, next, name_off, desc_off;
        GElf_Nhdr nh;

        if (!gelf_getshdr(scn, &sh))
            return aik_fail(err, -ENOEXEC, "elf.note", "bad section header: %s", elf_errmsg(-1));
        if (sh.sh_type != SHT_NOTE)
            continue;
        data = elf_getdata(scn, NULL);
        if (!data)
            return aik_fail(err, -ENOEXEC, "elf.note", "note section outside the file: %s", elf_errmsg(-1));
        /* gelf_getnote bounds-checks every note against the section data. */
        while (off < data->d_size && (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
            off = next;
            if (nh.n_namesz != sizeof(AIK_MODULE_NOTE_OWNER) ||
                memcmp((const char *)data->d_buf + name_off, AIK_MODULE_NOTE_OWNER, sizeof(AIK_MODULE_NOTE_OWNER)) != 0)
                continue;
            if (nh.n_type != AIK_MODULE_NOTE_TYPE)
                continue;
            if (found)
                return aik_fail(err, -ENOEXEC, "elf.note", "more than one AIK module note");
            /* Later minors may append fields; the 1.0 part must be there. */
            if (nh.n_descsz < sizeof(d))
                return aik_fail(err, -ENOEXEC, "elf.note.descsz", "is %u, must be >= %zu",
                                (unsigned)nh.n_descsz, sizeof(d));
            memcpy(&d, (const char *)data->d_buf + desc_off, sizeof(d));
            found = true;
        }
    }
    if (!found)
        return aik_fail(err, -ENOEXEC, "elf.note",
                        "no AIK module note (section " AIK_MODULE_NOTE_SECTION "): not built with AIK_MODULE()");
    if (!memchr(d.name, '\0', sizeof(d.name)))
        return aik_fail(err, -ENOEXEC, "elf.note.name", "not NUL-terminated");
    if (!memchr(d.version, '\0', sizeof(d.version)))
        return aik_fail(err, -ENOEXEC, "elf.note.version", "not NUL-terminated");
    if (!aik_valid_module_name(d.name))
        return aik_fail(err, -ENOEXEC, "elf.note.name", "invalid module name");
    {
        aik_modver v;
        if (aik_modver_parse(d.version, &v) < 0)
            return aik_fail(err, -ENOEXEC, "elf.note.version", "not MAJOR.MINOR.PATCH");
    }
    if (aik_module_kind_label(d.kind)[0] == '?')
        return aik_fail(err, -ENOEXEC, "elf.note.kind", "unknown module kind %u", d.kind);
    *ret = d;
    return 0;
}

int aik_elf_read_note(const void *image, size_t len, aik_module_note_desc *ret_note, aik_error *err)
{
    aik_module_note_desc d;
    Elf *e;
    int r;

    if (!ret_note)
        return -EINVAL;
    r = check_ident(image, len, err);
    if (r < 0)
        return r;
    e = open_image(image, len, err);
    if (!e)
        return -ENOEXEC;
    r = find_note(e, &d, err);
    elf_end(e);
    if (r == 0)
        *ret_note = d;
    return r;
}

/* Map a virtual address range to a file offset through the PT_LOAD segments
 * (as ld.so would find it in memory). */
static int vaddr_to_offset(Elf *e, size_t phnum, uint64_t vaddr, uint64_t size, uint64_t file_len,
                           uint64_t *ret_off)
{
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        uint64_t rel;

        if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        if (vaddr < ph.p_vaddr)
            continue;
        rel = vaddr - ph.p_vaddr;
        if (!aik_range_ok(rel, size, ph.p_filesz))
            continue;
        uint64_t off;
        if (aik_add_overflow(ph.p_offset, rel, &off) || !aik_range_ok(off, size, file_len))
            return -ERANGE;
        *ret_off = off;
        return 0;
    }
    return -ERANGE;
}

static int check_segments_and_dynamic(Elf *e, size_t len, uint32_t kind, aik_error *err)
{
    size_t phnum;
    bool have_stack = false, have_dynamic = false;
    GElf_Phdr dyn_ph;

    if (elf_getphdrnum(e, &phnum) < 0)
        return aik_fail(err, -ENOEXEC, "elf.phdr", "cannot read program headers: %s", elf_errmsg(-1));
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;

        if (!gelf_getphdr(e, (int)i, &ph))
            return aik_fail(err, -ENOEXEC, "elf.phdr", "program header %zu unreadable: %s", i, elf_errmsg(-1));
        if (ph.p_type == PT_GNU_STACK) {
            have_stack = true;
            if (ph.p_flags & PF_X)
                return aik_fail(err, -ENOEXEC, "elf.PT_GNU_STACK", "executable stack requested (PF_X)");
        } else if (ph.p_type == PT_DYNAMIC) {
            if (have_dynamic)
                return aik_fail(err, -ENOEXEC, "elf.PT_DYNAMIC", "more than one PT_DYNAMIC");
            have_dynamic = true;
            dyn_ph = ph;
        }
    }
    /* Without PT_GNU_STACK, ld.so assumes an executable stack. */
    if (!have_stack)
        return aik_fail(err, -ENOEXEC, "elf.PT_GNU_STACK", "missing (would imply an executable stack)");
    if (!have_dynamic)
        return aik_fail(err, -ENOEXEC, "elf.PT_DYNAMIC", "missing: not a shared object");
    if (!aik_range_ok(dyn_ph.p_offset, dyn_ph.p_filesz, len))
        return aik_fail(err, -ENOEXEC, "elf.PT_DYNAMIC", "[%llu, +%llu) outside the file of %zu bytes",
                        (unsigned long long)dyn_ph.p_offset, (unsigned long long)dyn_ph.p_filesz, len);

    {
        Elf_Data *data = elf_getdata_rawchunk(e, (int64_t)dyn_ph.p_offset, dyn_ph.p_filesz, ELF_T_DYN);
        size_t n;
        uint64_t strtab = 0, strsz = 0, str_off = 0;
        bool have_strtab = false, have_strsz = false;

        if (!data)
            return aik_fail(err, -ENOEXEC, "elf.PT_DYNAMIC", "unreadable: %s", elf_errmsg(-1));
        n = data->d_size / gelf_fsize(e, ELF_T_DYN, 1, EV_CURRENT);
        /* First pass: flags and the string table. */
        for (size_t i = 0; i < n; i++) {
            GElf_Dyn d;

            if (!gelf_getdyn(data, (int)i, &d))
                return aik_fail(err, -ENOEXEC, "elf.dynamic", "entry %zu unreadable", i);
            if (d.d_tag == DT_NULL)
                break;
            if (d.d_tag == DT_TEXTREL)
                return aik_fail(err, -ENOEXEC, "elf.dynamic.DT_TEXTREL", "text relocations (code is not position-independent)");
            if (d.d_tag == DT_FLAGS && (d.d_un.d_val & DF_TEXTREL))
                return aik_fail(err, -ENOEXEC, "elf.dynamic.DT_TEXTREL", "DF_TEXTREL set (code is not position-independent)");
            if (d.d_tag == DT_STRTAB) {
                strtab = d.d_un.d_ptr;
                have_strtab = true;
            } else if (d.d_tag == DT_STRSZ) {
                strsz = d.d_un.d_val;
                have_strsz = true;
            }
        }
        if (!have_strtab || !have_strsz || strsz == 0)
            return aik_fail(err, -ENOEXEC, "elf.dynamic.DT_STRTAB", "missing dynamic string table");
        if (vaddr_to_offset(e, (size_t)phnum, strtab, strsz, len, &str_off) < 0)
            return aik_fail(err, -ENOEXEC, "elf.dynamic.DT_STRTAB", "string table not inside a loaded segment of the file");
        /* Second pass: every DT_NEEDED against the allow-list. */
        for (size_t i = 0; i < n; i++) {
            GElf_Dyn d;
            const char *strs = (const char *)elf_rawfile(e, NULL) + str_off;
            const char *name;

            if (!gelf_getdyn(data, (int)i, &d))
                return aik_fail(err, -ENOEXEC, "elf.dynamic", "entry %zu unreadable", i);
            if (d.d_tag == DT_NULL)
                break;
            if (d.d_tag != DT_NEEDED)
                continue;
            if (d.d_un.d_val >= strsz || !memchr(strs + d.d_un.d_val, '\0', strsz - d.d_un.d_val))
                return aik_fail(err, -ENOEXEC, "elf.dynamic.DT_NEEDED", "name offset %llu outside the string table",
                                (unsigned long long)d.d_un.d_val);
            name = strs + d.d_un.d_val;
            if (!aik_elf_needed_allowed(name, kind))
                return aik_fail(err, -ENOEXEC, "elf.dynamic.DT_NEEDED",
                                "'%.80s' is not on the allow-list for %s modules (see docs/module-format.md)", name,
                                aik_module_kind_label(kind));
        }
    }
    return 0;
}

static int check_entry_symbol(Elf *e, aik_error *err)
{
    Elf_Scn *scn = NULL;
    bool have_dynsym = false;

    while ((scn = elf_nextscn(e, scn))) {
        GElf_Shdr sh;
        Elf_Data *data;
        size_t n;

        if (!gelf_getshdr(scn, &sh))
            return aik_fail(err, -ENOEXEC, "elf.dynsym", "bad section header");
        if (sh.sh_type != SHT_DYNSYM)
            continue;
        have_dynsym = true;
        data = elf_getdata(scn, NULL);
        if (!data || sh.sh_entsize == 0)
            return aik_fail(err, -ENOEXEC, "elf.dynsym", "unreadable: %s", elf_errmsg(-1));
        n = data->d_size / gelf_fsize(e, ELF_T_SYM, 1, EV_CURRENT);
        for (size_t i = 1; i < n; i++) {
            GElf_Sym s;
            const char *name;

            if (!gelf_getsym(data, (int)i, &s))
                return aik_fail(err, -ENOEXEC, "elf.dynsym", "symbol %zu unreadable", i);
            /* elf_strptr bounds-checks against the linked string table. */
            name = elf_strptr(e, sh.sh_link, s.st_name);
            if (!name || strcmp(name, AIK_MODULE_ENTRY_SYMBOL) != 0)
                continue;
            if (s.st_shndx == SHN_UNDEF)
                return aik_fail(err, -ENOEXEC, "elf.dynsym." AIK_MODULE_ENTRY_SYMBOL, "is undefined");
            if (GELF_ST_BIND(s.st_info) != STB_GLOBAL)
                return aik_fail(err, -ENOEXEC, "elf.dynsym." AIK_MODULE_ENTRY_SYMBOL, "is not a global symbol");
            if (GELF_ST_VISIBILITY(s.st_other) != STV_DEFAULT)
                return aik_fail(err, -ENOEXEC, "elf.dynsym." AIK_MODULE_ENTRY_SYMBOL, "does not have default visibility");
            if (GELF_ST_TYPE(s.st_info) != STT_OBJECT)
                return aik_fail(err, -ENOEXEC, "elf.dynsym." AIK_MODULE_ENTRY_SYMBOL, "is not a data object");
            return 0;
        }
    }
    return aik_fail(err, -ENOEXEC, "elf.dynsym." AIK_MODULE_ENTRY_SYMBOL,
                    have_dynsym ? "entry symbol not exported" : "no dynamic symbol table");
}

int aik_elf_check(const void *image, size_t len, aik_module_note_desc *ret_note, aik_error *err)
{
    aik_module_note_desc note;
    GElf_Ehdr eh;
    Elf *e;
    int r;

    if (!ret_note)
        return -EINVAL;
    r = check_ident(image, len, err);
    if (r < 0)
        return r;
    e = open_image(image, len, err);
    if (!e)
        return -ENOEXEC;
    if (!gelf_getehdr(e, &eh)) {
        r = aik_fail(err, -ENOEXEC, "elf.header", "unreadable: %s", elf_errmsg(-1));
        goto out;
    }
    if (eh.e_type != ET_DYN) {
        r = aik_fail(err, -ENOEXEC, "elf.header.e_type", "is %u, a module must be a shared object (ET_DYN)", eh.e_type);
        goto out;
    }
    if (eh.e_machine != HOST_MACHINE) {
        r = aik_fail(err, -ENOEXEC, "elf.header.e_machine", "machine %u does not match the host's %u", eh.e_machine,
                     HOST_MACHINE);
        goto out;
    }
    r = find_note(e, &note, err);
    if (r < 0)
        goto out;
    if (note.abi_major != AIK_MODULE_ABI_MAJOR) {
        r = aik_fail(err, -ENOEXEC, "elf.note.abi_major", "module ABI %u.%u, this loader speaks %u.x",
                     note.abi_major, note.abi_minor, AIK_MODULE_ABI_MAJOR);
        goto out;
    }
    r = check_segments_and_dynamic(e, len, note.kind, err);
    if (r < 0)
        goto out;
    r = check_entry_symbol(e, err);
    if (r < 0)
        goto out;
    *ret_note = note;
out:
    elf_end(e);
    return r;
}
