/*
 * The daemon's abstract unix socket: its name is the lock that keeps a second daemon from
 * starting, and traced processes ask it for fds of the kernel maps the daemon fronts, so they
 * need no CAP_BPF (maps/kernel_map_fd.c is the other end), and for the fds of the programs that
 * output into fronted ring buffers and perf event arrays (maps/kernel_ring.c). Only maps the daemon fronts are
 * handed out, to anyone who can reach the socket (the segment's permissions already decide who
 * runs programs on them).
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "../maps/kernel_map.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int fd_server_open(void)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		dlog("socket: %s\n", strerror(errno));
		return -1;
	}
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	memcpy(addr.sun_path + 1, KERNEL_MAP_SOCKET, sizeof(KERNEL_MAP_SOCKET) - 1);
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + sizeof(KERNEL_MAP_SOCKET) - 1;
	if (bind(s, (struct sockaddr *)&addr, len) < 0) {
		if (errno == EADDRINUSE)
			dlog("another bpftime daemon is running (abstract socket @%s is taken); stop it "
			     "first\n", KERNEL_MAP_SOCKET);
		else
			dlog("bind @%s: %s\n", KERNEL_MAP_SOCKET, strerror(errno));
		close(s);
		return -1;
	}
	if (listen(s, 16) < 0) {
		dlog("listen: %s\n", strerror(errno));
		close(s);
		return -1;
	}
	return s;
}

static void reply(int c, int32_t err, int fd)
{
	struct kernel_map_reply r = {err};
	struct iovec iov = {&r, sizeof(r)};
	_Alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (err == 0) {
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(c, &msg, MSG_NOSIGNAL) < 0)
		dverbose("fd request: reply: %s\n", strerror(errno));
}

void fd_server_accept(int listen_fd)
{
	int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	/* One short request; a client that sends nothing is dropped after 200 ms. */
	struct pollfd p = {c, POLLIN, 0};
	struct kernel_map_request req;
	if (poll(&p, 1, 200) == 1 && recv(c, &req, sizeof(req), MSG_DONTWAIT) == (ssize_t)sizeof(req) &&
	    (req.magic == KERNEL_MAP_REQ_MAGIC || req.magic == KERNEL_OUT_REQ_MAGIC)) {
		int fd = redirect_fronted_fd(req.map_id);
		if (fd >= 0 && req.magic == KERNEL_OUT_REQ_MAGIC)
			fd = redirect_output_prog(req.map_id);
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
			dverbose("fd request from pid %d for kernel map %u: %s\n", cred.pid, req.map_id,
				 fd >= 0 ? (req.magic == KERNEL_OUT_REQ_MAGIC ? "output program sent" : "sent")
					 : "not a map the daemon fronts");
		reply(c, fd >= 0 ? 0 : -ENOENT, fd);
	}
	close(c);
}
