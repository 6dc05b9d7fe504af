function Stack:push(v)
  self.items[#self.items + 1] = v
end
