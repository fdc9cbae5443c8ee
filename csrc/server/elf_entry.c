/*
 * Whether a file offset is a function's first instruction, from the ELF
 * file's own symbol tables (.symtab, else .dynsym): a uprobe there may return
 * for the function (bpf_override_return). libbpf resolves function names to
 * offsets itself, so the offset is all the server sees.
 */
#include "server.h"

#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool read_at(int fd, void *buf, size_t len, uint64_t off)
{
	return pread(fd, buf, len, (off_t)off) == (ssize_t)len;
}

/* The symbols of table `symtab` (a SHT_SYMTAB or SHT_DYNSYM header) mapped to file offsets. */
static bool table_has_entry(int fd, const Elf64_Shdr *shdrs, uint16_t shnum, const Elf64_Shdr *symtab,
			    uint64_t offset)
{
	if (symtab->sh_entsize != sizeof(Elf64_Sym) || symtab->sh_size > (64u << 20))
		return false;
	size_t n = symtab->sh_size / sizeof(Elf64_Sym);
	Elf64_Sym *syms = malloc(symtab->sh_size ? symtab->sh_size : 1);
	if (!syms || !read_at(fd, syms, symtab->sh_size, symtab->sh_offset)) {
		free(syms);
		return false;
	}
	bool found = false;
	for (size_t i = 0; i < n && !found; i++) {
		const Elf64_Sym *s = &syms[i];
		if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx == SHN_UNDEF || s->st_shndx >= shnum)
			continue;
		const Elf64_Shdr *sec = &shdrs[s->st_shndx];
		if (s->st_value < sec->sh_addr || s->st_value - sec->sh_addr >= sec->sh_size)
			continue;
		found = s->st_value - sec->sh_addr + sec->sh_offset == offset;
	}
	free(syms);
	return found;
}

bool elf_function_entry(const char *path, uint64_t offset)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	Elf64_Ehdr eh;
	bool found = false;
	Elf64_Shdr *shdrs = NULL;
	if (!read_at(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0)
		goto out;
	shdrs = calloc(eh.e_shnum, sizeof(Elf64_Shdr));
	if (!shdrs || !read_at(fd, shdrs, eh.e_shnum * sizeof(Elf64_Shdr), eh.e_shoff))
		goto out;
	for (int pass = 0; pass < 2 && !found; pass++)
		for (uint16_t i = 0; i < eh.e_shnum && !found; i++)
			if (shdrs[i].sh_type == (pass ? SHT_DYNSYM : SHT_SYMTAB))
				found = table_has_entry(fd, shdrs, eh.e_shnum, &shdrs[i], offset);
out:
	free(shdrs);
	close(fd);
	return found;
}
