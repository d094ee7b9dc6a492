# The talus image: one static binary and nothing else, so it builds without
# pulling from any registry. Build it with `make image`, which compiles
# bin/talus with CGO_ENABLED=0 and lays out the build context in
# .build/image (rootfs/ with the binary and an empty /tmp; data/, the empty
# /data owned by the runtime user).
FROM scratch
COPY rootfs/ /
COPY --chown=65534:65534 data/ /data/
# nobody:nogroup; named volumes mounted on /data inherit its ownership.
USER 65534:65534
ENV TMPDIR=/tmp
VOLUME ["/data"]
ENTRYPOINT ["/talus"]
CMD ["help"]
